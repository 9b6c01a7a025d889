/**
 * Random identifiers: connection ids, and resume tokens. A resume token is `SID.SECRET`, both parts
 * 128 random bits: the SID names the session for good (its stored messages, its dedupe ids, its
 * Redis keys); the secret changes on every resume, so a token seen once stops working once its
 * owner is back. Both engines make and read tokens through this module.
 */

/** URL-safe base64 of `bytes` random bytes. */
export function randomToken(bytes = 24): string {
  const buf = new Uint8Array(bytes);
  crypto.getRandomValues(buf);
  let s = "";
  for (const b of buf) s += String.fromCharCode(b);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

export function newConnectionId(): string {
  return crypto.randomUUID().replaceAll("-", "").slice(0, 16);
}

/** A new session's stable id, or a new secret for one. */
export function newTokenPart(): string {
  return randomToken(16);
}

export function tokenOf(sid: string, secret: string): string {
  return `${sid}.${secret}`;
}

/** The stable part of a token (a token from before secrets existed is its own SID). */
export function sidOf(token: string): string {
  const dot = token.indexOf(".");
  return dot === -1 ? token : token.slice(0, dot);
}

/** The secret part of a token; "" for a token without one. */
export function secretOf(token: string): string {
  const dot = token.indexOf(".");
  return dot === -1 ? "" : token.slice(dot + 1);
}
