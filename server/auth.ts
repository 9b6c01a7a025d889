/**
 * Access tokens: HS256 JWTs carrying a nickname and an expiry, signed and checked with crypto.subtle.
 * Protocol v2 reads two more claims, through `verifyUser`: `sub` (the user) and `mod` (a moderator);
 * `verify`, protocol v1's check, neither reads nor needs them.
 */
import { charCount, isValidNick, isWellFormed, normalizeNick } from "../protocol";

export interface TokenClaims {
  nick: string;
  /** Expiry, seconds since the epoch. */
  exp: number;
  /** v2: the user the token is for (1-128 characters); absent, the user is `nick`. */
  sub?: string;
  /** v2: `true` makes the user a moderator. */
  mod?: boolean;
}

export type Verified = { ok: true; claims: TokenClaims } | { ok: false; reason: string };

/** A v2 access token checked: its claims, and the user it is for (`sub`, else `nick`). */
export type VerifiedUser = { ok: true; claims: TokenClaims; userId: string } | { ok: false; reason: string };

/** Longest `sub` claim, in characters (code points). */
export const SUB_MAX = 128;

/** Parsed and checked the v1 way, with the JSON claims as they came for v2 to read further. */
type Checked =
  | { ok: true; claims: TokenClaims; raw: Record<string, unknown> }
  | { ok: false; reason: string };

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

  /** Checks signature, header, expiry and nickname (protocol v1: other claims are ignored); never throws. */
  async verify(token: string, nowSeconds: number): Promise<Verified> {
    const checked = await this.check(token, nowSeconds);
    return checked.ok ? { ok: true, claims: checked.claims } : checked;
  }

  /**
   * Protocol v2: as `verify`, and the user: the `sub` claim when there is one (a non-empty string of
   * at most 128 characters, else the token is refused rather than taken for its `nick`), else `nick`;
   * `"mod": true` (exactly) marks a moderator. Never throws.
   */
  async verifyUser(token: string, nowSeconds: number): Promise<VerifiedUser> {
    const checked = await this.check(token, nowSeconds);
    if (!checked.ok) return checked;
    const claims: TokenClaims = { ...checked.claims };
    const { sub, mod } = checked.raw;
    if (sub !== undefined) {
      if (typeof sub !== "string" || sub === "" || !isWellFormed(sub) || charCount(sub) > SUB_MAX)
        return { ok: false, reason: "bad sub claim" };
      claims.sub = sub;
    }
    if (mod === true) claims.mod = true;
    return { ok: true, claims, userId: claims.sub ?? claims.nick };
  }

  private async check(token: string, nowSeconds: number): Promise<Checked> {
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
    const raw = (typeof claims === "object" && claims !== null ? claims : {}) as Record<string, unknown>;
    const { nick, exp } = raw;
    if (typeof nick !== "string" || !isValidNick(normalizeNick(nick)))
      return { ok: false, reason: "bad nick claim" };
    if (typeof exp !== "number" || !Number.isFinite(exp)) return { ok: false, reason: "missing exp claim" };
    if (exp <= nowSeconds) return { ok: false, reason: "token expired" };
    return { ok: true, claims: { nick: normalizeNick(nick), exp }, raw };
  }
}
