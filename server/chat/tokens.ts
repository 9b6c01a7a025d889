/** Random identifiers: resume tokens (192 bits) and connection ids. */

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
