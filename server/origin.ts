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

/** The most of a client's Origin or Host this server repeats, in answers and in logs. */
export const ECHO_MAX = 200;

/** `text` cut to ECHO_MAX characters (with an ellipsis when cut). */
export function clip(text: string): string {
  return text.length > ECHO_MAX ? `${text.slice(0, ECHO_MAX - 1)}…` : text;
}

export interface OriginQuestion {
  origin: string;
  host: string | null;
  allowed: readonly string[];
  scheme: string;
  forwardedHost?: string | null;
}

/** The answer of `/api/origin-check`, and the fields of the log line of a refused Origin. */
export interface OriginVerdict {
  allowed: boolean;
  /** The origin asked about (at most ECHO_MAX characters). */
  origin: string;
  /** The Host this server compared with (at most ECHO_MAX characters); null when none came. */
  host: string | null;
  /** The scheme this server believes the page used: the request's, or X-Forwarded-Proto's. */
  scheme: string;
  /** The proxy's X-Forwarded-Host when sent: shown, never trusted for the check. */
  forwardedHost?: string;
  /** Present when refused: what to change, in people's words. */
  hint?: string;
}

/**
 * originAllowed's verdict on `origin` (the very rule the upgrade applies), with the Host and
 * scheme it compared and, when refused, a sentence saying what to configure.
 */
export function explainOrigin(q: OriginQuestion): OriginVerdict {
  const allowed = originAllowed(q.origin, q.host, q.allowed, q.scheme);
  const verdict: OriginVerdict = {
    allowed,
    origin: clip(q.origin),
    host: q.host === null ? null : clip(q.host),
    scheme: q.scheme,
  };
  if (q.forwardedHost) verdict.forwardedHost = clip(q.forwardedHost);
  if (!allowed) verdict.hint = originHint(q, verdict);
  return verdict;
}

const PASS_HOST = "make your proxy pass the Host header (nginx: proxy_set_header Host $host;)";

function originHint(q: OriginQuestion, shown: OriginVerdict): string {
  let url: URL | undefined;
  try {
    url = new URL(q.origin);
  } catch {
    url = undefined;
  }
  const web = url !== undefined && (url.protocol === "http:" || url.protocol === "https:");
  if (!web || url === undefined) {
    return (
      `The page's origin "${shown.origin}" is not a web address (http:// or https://), so it cannot ` +
      "connect. Open the chat from the server's own address."
    );
  }
  // The value to configure: the origin as browsers write it (lower case, no default port).
  const setting = url.origin.length <= ECHO_MAX ? `ALLOWED_ORIGINS=${url.origin}` : "ALLOWED_ORIGINS";
  if (q.allowed.length > 0) {
    return (
      `This server accepts pages only from the origins listed in ALLOWED_ORIGINS, and ${clip(url.origin)} ` +
      `is not one of them. Add it to ALLOWED_ORIGINS on the server (comma-separated, exactly as written here).`
    );
  }
  if (q.host === null) {
    return (
      "This server only accepts pages from its own address, but the request named no Host to compare " +
      `with. Set ${setting} on the server, or ${PASS_HOST}.`
    );
  }
  const forwarded =
    shown.forwardedHost === undefined
      ? ""
      : ` Your proxy sends X-Forwarded-Host: ${shown.forwardedHost}, which this check does not trust.`;
  if (url.host.toLowerCase() !== q.host.toLowerCase()) {
    return (
      `This server only accepts pages from its own address (it sees Host: ${shown.host}, but the page ` +
      `is at ${clip(url.host)}). Set ${setting} on the server, or ${PASS_HOST}.${forwarded}`
    );
  }
  // Same host, another scheme: a proxy ended TLS and did not say so.
  return (
    `The page was loaded over ${url.protocol.slice(0, -1)}, but this server sees ${q.scheme.slice(0, -1)} ` +
    `(a proxy that ends TLS should send X-Forwarded-Proto: ${url.protocol.slice(0, -1)}). Set ${setting} ` +
    "on the server, or make your proxy send X-Forwarded-Proto."
  );
}
