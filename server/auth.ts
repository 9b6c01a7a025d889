/** Access tokens: HS256 JWTs carrying a nickname and an expiry, signed and checked with crypto.subtle. */
import { isValidNick, normalizeNick } from "../protocol";

export interface TokenClaims {
  nick: string;
  /** Expiry, seconds since the epoch. */
  exp: number;
}

export type Verified = { ok: true; claims: TokenClaims } | { ok: false; reason: string };

const enc = new TextEncoder();
const HEADER = base64url(enc.encode(JSON.stringify({ alg: "HS256", typ: "JWT" })));

function base64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

function fromBase64url(s: string): Uint8Array<ArrayBuffer> {
  const bin = atob(s.replaceAll("-", "+").replaceAll("_", "/"));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export class TokenAuthority {
  private readonly key: Promise<CryptoKey>;

  constructor(secret: string) {
    this.key = crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
      "verify",
    ]);
  }

  async sign(claims: TokenClaims): Promise<string> {
    const body = base64url(enc.encode(JSON.stringify(claims)));
    const sig = await crypto.subtle.sign("HMAC", await this.key, enc.encode(`${HEADER}.${body}`));
    return `${HEADER}.${body}.${base64url(new Uint8Array(sig))}`;
  }

  /** Checks signature, header, expiry and nickname; never throws. */
  async verify(token: string, nowSeconds: number): Promise<Verified> {
    const parts = token.split(".");
    if (parts.length !== 3) return { ok: false, reason: "malformed token" };
    const [header, body, sig] = parts as [string, string, string];
    if (header !== HEADER) return { ok: false, reason: "unsupported token header" };
    let valid: boolean;
    try {
      valid = await crypto.subtle.verify(
        "HMAC",
        await this.key,
        fromBase64url(sig),
        enc.encode(`${header}.${body}`),
      );
    } catch {
      return { ok: false, reason: "malformed signature" };
    }
    if (!valid) return { ok: false, reason: "bad signature" };
    let claims: unknown;
    try {
      claims = JSON.parse(new TextDecoder().decode(fromBase64url(body)));
    } catch {
      return { ok: false, reason: "malformed claims" };
    }
    const { nick, exp } = (claims ?? {}) as Partial<TokenClaims>;
    if (typeof nick !== "string" || !isValidNick(normalizeNick(nick)))
      return { ok: false, reason: "bad nick claim" };
    if (typeof exp !== "number" || !Number.isFinite(exp)) return { ok: false, reason: "missing exp claim" };
    if (exp <= nowSeconds) return { ok: false, reason: "token expired" };
    return { ok: true, claims: { nick: normalizeNick(nick), exp } };
  }
}
