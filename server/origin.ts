/** Which browser origins may open a WebSocket: an exact allow-list, or the same host. */
export function originAllowed(
  origin: string | null,
  host: string | null,
  allowed: readonly string[],
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
  return url.host.toLowerCase() === host.toLowerCase();
}
