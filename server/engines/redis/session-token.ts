/**
 * A resume token is `SID.SECRET`: the SID names the session in Redis for good (its hash, its dedupe
 * ids, its users entries); the secret, kept in the session's hash, changes on every resume.
 */

/** The stable part of a token (a token without a secret is its own SID). */
export function sidOf(token: string): string {
  const dot = token.indexOf(".");
  return dot === -1 ? token : token.slice(0, dot);
}

export function secretOf(token: string): string {
  const dot = token.indexOf(".");
  return dot === -1 ? "" : token.slice(dot + 1);
}
