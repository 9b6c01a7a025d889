/**
 * Who a client is, for the per-address limits: the socket's peer, or behind a trusted proxy the
 * address that proxy saw (X-Forwarded-For, read from the right, skipping trusted hops). IPv6
 * addresses count by their /64, the block one subscriber usually holds.
 */

/** An address range: an IPv4 or IPv6 address as 16 bytes, and the prefix length in those bits. */
interface Cidr {
  bytes: Uint8Array;
  bits: number;
}

/** 16 bytes of an IPv4 (mapped) or IPv6 address, or undefined when it is neither. */
export function parseIp(text: string): Uint8Array | undefined {
  const ip = text.trim().replace(/^\[|\]$/g, "");
  const v4 = parseV4(ip);
  if (v4) return mapped(v4);
  if (!ip.includes(":") || ip.includes("%")) return undefined;
  let head = ip;
  let tail = "";
  const dots = ip.lastIndexOf(":");
  // An IPv6 address may end in dotted IPv4 (::ffff:1.2.3.4).
  let v4tail: number[] | undefined;
  if (ip.slice(dots + 1).includes(".")) {
    v4tail = parseV4(ip.slice(dots + 1));
    if (!v4tail) return undefined;
    head = `${ip.slice(0, dots + 1)}0:0`;
  }
  const parts = head.split("::");
  if (parts.length > 2) return undefined;
  [head, tail] = [parts[0] ?? "", parts[1] ?? ""];
  const groups = (s: string) => (s === "" ? [] : s.split(":"));
  const a = groups(head);
  const b = groups(tail);
  const fill = 8 - a.length - b.length;
  if (parts.length === 1 ? fill !== 0 : fill < 1) return undefined;
  const all = [...a, ...Array(Math.max(0, parts.length === 2 ? fill : 0)).fill("0"), ...b];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const g = all[i] as string;
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    const v = Number.parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  }
  if (v4tail) out.set(v4tail, 12);
  return out;
}

function parseV4(ip: string): number[] | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  const octets = m.slice(1).map(Number);
  return octets.every((o) => o <= 255) ? octets : undefined;
}

function mapped(v4: number[]): Uint8Array {
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(v4, 12);
  return out;
}

function isV4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** `10.0.0.0/8`, `fd00::/8` or a single address; undefined when it is not one. */
export function parseCidr(text: string): Cidr | undefined {
  const [addr = "", prefix] = text.trim().split("/");
  const bytes = parseIp(addr);
  if (!bytes) return undefined;
  const v4 = isV4Mapped(bytes) && !addr.includes(":");
  const max = v4 ? 32 : 128;
  const bits = prefix === undefined ? max : Number(prefix);
  if (!Number.isInteger(bits) || bits < 0 || bits > max || (prefix !== undefined && !/^\d+$/.test(prefix)))
    return undefined;
  return { bytes, bits: v4 ? bits + 96 : bits };
}

function contains(c: Cidr, ip: Uint8Array): boolean {
  let bits = c.bits;
  for (let i = 0; i < 16 && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((c.bytes[i] as number) & mask) !== ((ip[i] as number) & mask)) return false;
  }
  return true;
}

/** The key the per-address limits count by: an IPv4 address, or an IPv6 /64 (`2001:db8:1:2::/64`). */
export function addressKey(ip: string): string {
  const b = parseIp(ip);
  if (!b) return ip;
  if (isV4Mapped(b)) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const g = (i: number) => (((b[i * 2] as number) << 8) | (b[i * 2 + 1] as number)).toString(16);
  return `${g(0)}:${g(1)}:${g(2)}:${g(3)}::/64`;
}

export class ClientAddresses {
  private readonly trusted: Cidr[];

  constructor(trustedProxies: readonly string[]) {
    this.trusted = trustedProxies.map((t) => {
      const c = parseCidr(t);
      if (!c) throw new Error(`not an address or CIDR: ${t}`);
      return c;
    });
  }

  isTrusted(ip: string): boolean {
    const b = parseIp(ip);
    return b !== undefined && this.trusted.some((c) => contains(c, b));
  }

  /**
   * The client's address: the peer, unless the peer is a trusted proxy; then the nearest address in
   * X-Forwarded-For (from the right) that is not itself a trusted proxy. A header from anyone else
   * is ignored: a client cannot choose its own address.
   */
  resolve(peer: string, forwardedFor: string | null): string {
    if (forwardedFor === null || !this.isTrusted(peer)) return peer;
    const hops = forwardedFor
      .split(",")
      .map((h) => h.trim())
      .filter((h) => h !== "");
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i] as string;
      if (!parseIp(hop)) return peer;
      if (!this.isTrusted(hop)) return hop.replace(/^\[|\]$/g, "");
    }
    return hops[0]?.replace(/^\[|\]$/g, "") ?? peer;
  }
}
