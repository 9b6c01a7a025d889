/** Which browser origins may open a WebSocket: an exact allow-list, or the same origin. */
export function originAllowed(
  origin: string | null,
  host: string | null,
  allowed: readonly string[],
  /** The scheme the page must have used (`http:` / `https:`), when the caller knows it. */
  scheme?: string,
): boolean {
  // Non-browser clients send no Origin; the check exists to stop other web pages, not them.
  if (origin === null) return true;
  if (allowed.length > 0) return allowed.includes(origin);
  if (host === null) return false;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return false;
  if (scheme !== undefined && url.protocol !== scheme) return false;
  return url.host.toLowerCase() === host.toLowerCase();
}

/**
 * The scheme a browser used to reach us: a TLS-terminating proxy says so in X-Forwarded-Proto
 * (a page cannot set that header on a WebSocket upgrade); otherwise the request's own.
 */
export function requestScheme(forwardedProto: string | null, requestUrl: URL): string {
  const proto = forwardedProto?.split(",")[0]?.trim().toLowerCase();
  return proto === "http" || proto === "https" ? `${proto}:` : requestUrl.protocol;
}
