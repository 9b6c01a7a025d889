/** Configuration from the environment (and `--name value` flags) by the table of settings.ts: parsed once, failing fast. */
import { CROSS_RULES, SETTING_LIST } from "./settings";
import { BadValue, type HostPort, type Setting } from "./settings-parsers";

export interface Config {
  port: number;
  host: string;
  dbPath: string;
  dbSync: "off" | "normal" | "full";
  redisUrl: string | undefined;
  /** Seed nodes of a Redis Cluster; empty when there is none. */
  redisCluster: HostPort[];
  /** Replicas that must hold a write before it is acked. */
  redisMinReplicas: number;
  /** With REDIS_URL: a process silent this long is presumed dead and its users leave every room. */
  presenceTtlSeconds: number;
  /** Exact browser origins allowed; empty means same host only. */
  allowedOrigins: string[];
  authSecret: string | undefined;
  /** Signs the identity tokens minted for v2 users. */
  identitySecret: string | undefined;
  /** Bearer token of the admin API; unset, the API refuses everyone. */
  adminToken: string | undefined;
  rateLimit: number;
  rateBurst: number;
  maxConnections: number;
  maxConnectionsPerIp: number;
  /** Addresses and CIDRs, as written, whose X-Forwarded-For is believed; empty trusts no one. */
  trustedProxies: string[];
  maxPayload: number;
  controlRateLimit: number;
  controlRateBurst: number;
  frameRateLimit: number;
  frameRateBurst: number;
  floodCloseAfter: number;
  slowConsumerBytes: number;
  presenceBatchMs: number;
  presenceBatchMinMembers: number;
  heartbeatIntervalSeconds: number;
  heartbeatTimeoutSeconds: number;
  resumeTtlSeconds: number;
  idleTimeoutSeconds: number;
  maxRoomsPerUser: number;
  /** 0: an edit is allowed at any time. */
  editWindowSeconds: number;
  logLevel: "debug" | "info" | "warn" | "error";
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    detail: string,
  ) {
    super(`${variable}: ${detail}`);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

/** `--port 8080` and `--port=8080` set PORT; flags win over the environment. */
export function flagsToEnv(argv: readonly string[]): Env {
  const env: Env = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith("--")) continue;
    const eq = arg.indexOf("=");
    const name = (eq === -1 ? arg.slice(2) : arg.slice(2, eq)).toUpperCase().replaceAll("-", "_");
    if (eq !== -1) env[name] = arg.slice(eq + 1);
    else if (i + 1 < argv.length) env[name] = argv[++i];
    else throw new ConfigError(name, "flag has no value");
  }
  return env;
}

/** Empty counts as unset, so `PORT= npm start` or a blank line of an env file means the default. */
function read<T>(setting: Setting<T>, value: string | undefined): T {
  const given = setting.untrimmed ? value : value?.trim();
  // A copy, so that a caller changing its config's lists does not change the defaults.
  if (given === undefined || given === "") return structuredClone(setting.default);
  try {
    return setting.parse(given);
  } catch (err) {
    if (err instanceof BadValue) throw new ConfigError(setting.env, err.message);
    throw err;
  }
}

export function loadConfig(env: Env, argv: readonly string[] = []): Config {
  const all = { ...env, ...flagsToEnv(argv) };
  const config: Partial<Record<keyof Config, unknown>> = {};
  for (const [key, setting] of SETTING_LIST) config[key] = read(setting, all[setting.env]);
  for (const rule of CROSS_RULES) {
    if (rule.broken(config as Config)) throw new ConfigError(rule.env, rule.detail);
  }
  return config as Config;
}

/** What an empty environment gives: the one place other modules take a default from. */
export const DEFAULT_CONFIG: Config = Object.freeze(loadConfig({}));
