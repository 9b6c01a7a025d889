/** What a setting is, and the kinds of value: each reads a variable's text strictly and writes a value back as text. */
import { existsSync } from "node:fs";

/** A text the kind does not accept; the loader turns it into a ConfigError naming the variable. */
export class BadValue extends Error {}

export interface Kind<T> {
  /** Gets the text trimmed (unless `untrimmed`) and never empty: empty means the default. */
  parse(text: string): T;
  /** The text that parses back to `value`; "" for an unset value. */
  format(value: T): string;
  /** Secrets are taken exactly as given: spaces may be part of them. */
  untrimmed?: boolean;
}

export interface Setting<T> extends Kind<T> {
  /** The environment variable; `--kebab-case` flags map onto it. */
  env: string;
  default: T;
  /** The README's "meaning" cell, in Markdown. */
  meaning: string;
  /** The README's "default" cell when the default is unset; a set default is shown as its own text. */
  shown?: string;
}

function inRange(n: number, min: number, max: number): number {
  if (n < min || n > max) throw new BadValue(`expected ${min}..${max}, got ${n}`);
  return n;
}

export function integer(min: number, max: number): Kind<number> {
  return {
    parse(text) {
      if (!/^\d+$/.test(text)) throw new BadValue(`expected a whole number, got "${text}"`);
      return inRange(Number(text), min, max);
    },
    format: String,
  };
}

export function decimal(min: number, max: number): Kind<number> {
  return {
    parse(text) {
      if (!/^\d+(\.\d+)?$/.test(text)) throw new BadValue(`expected a number, got "${text}"`);
      return inRange(Number(text), min, max);
    },
    format: String,
  };
}

export const text: Kind<string> = { parse: (value) => value, format: (value) => value };

/** DB_SYNC has always been case-blind and LOG_LEVEL not; `caseless` keeps each as it was. */
export function oneOf<const T extends string>(values: readonly T[], caseless = false): Kind<T> {
  return {
    parse(text) {
      const value = caseless ? text.toLowerCase() : text;
      if (!(values as readonly string[]).includes(value)) {
        throw new BadValue(`expected one of ${values.join(", ")}`);
      }
      return value as T;
    },
    format: (value) => value,
  };
}

/** A shared secret: too short a one is guessable, so it is refused rather than used. */
export const secret: Kind<string | undefined> = {
  parse(text) {
    if (text.length < 16) throw new BadValue("use at least 16 characters");
    return text;
  },
  format: (value) => value ?? "",
  untrimmed: true,
};

/** A file that must be there to be read (a CA certificate): a typo is refused at start, not at first use. */
export const existingFile: Kind<string | undefined> = {
  parse(text) {
    if (!existsSync(text)) throw new BadValue(`no file at "${text}"`);
    return text;
  },
  format: (value) => value ?? "",
};

/** A credential of someone else's service (a Redis password): taken as given, of any length. */
export const credential: Kind<string | undefined> = {
  parse: (text) => text,
  format: (value) => value ?? "",
  untrimmed: true,
};

export const redisUrl: Kind<string | undefined> = {
  parse(text) {
    if (!/^(redis|rediss|valkey|valkeys):\/\/[^\s]+$/.test(text)) {
      throw new BadValue(`expected a URL like redis://host:6379, got "${text}"`);
    }
    return text;
  },
  format: (value) => value ?? "",
};

function list<T>(item: (entry: string) => T, format: (value: T) => string): Kind<T[]> {
  return {
    parse: (text) => text.split(",").map((entry) => item(entry.trim())),
    format: (values) => values.map(format).join(","),
  };
}

/** Origins are compared as strings later, so one written differently from its canonical form never matches. */
export const origins = list((origin) => {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    throw new BadValue(`"${origin}" is not an origin like https://chat.example`);
  }
  if (url.origin !== origin) throw new BadValue(`"${origin}" must be written exactly as ${url.origin}`);
  return origin;
}, String);

export interface HostPort {
  host: string;
  port: number;
}

/** `host:port`, with an IPv6 host in brackets (`[::1]:7000`); the brackets are not part of `host`. */
export const hostPorts = list<HostPort>(
  (entry) => {
    const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]/]+)):(\d{1,5})$/.exec(entry);
    const host = match?.[1] ?? match?.[2];
    if (!match || host === undefined) throw new BadValue(`"${entry}" is not a host:port like redis-1:6379`);
    const port = Number(match[3]);
    if (port < 1 || port > 65535) throw new BadValue(`"${entry}": expected a port 1..65535`);
    return { host, port };
  },
  ({ host, port }) => (host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`),
);

const OCTET = "(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
const IPV4 = new RegExp(`^${OCTET}(\\.${OCTET}){3}$`);

/** The URL parser knows every IPv6 spelling (`::`, embedded IPv4) and refuses zone ids, as it should here. */
function isIPv6(address: string): boolean {
  return /^[0-9A-Fa-f:.]+$/.test(address) && address.includes(":") && URL.canParse(`http://[${address}]/`);
}

/** An address or CIDR as written; a typo here would silently trust, or distrust, a proxy. */
export const addresses = list((entry) => {
  const [address = "", prefix, ...more] = entry.split("/");
  const bits = IPV4.test(address) ? 32 : isIPv6(address) ? 128 : 0;
  if (bits === 0 || more.length > 0) {
    throw new BadValue(`"${entry}" is not an IP address or CIDR like 10.0.0.0/8 or fd00::/8`);
  }
  if (prefix !== undefined && !(/^(0|[1-9]\d{0,2})$/.test(prefix) && Number(prefix) <= bits)) {
    throw new BadValue(`"${entry}": the prefix of an IPv${bits === 32 ? 4 : 6} CIDR is 0..${bits}`);
  }
  return entry;
}, String);
