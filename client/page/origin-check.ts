/**
 * When the socket keeps failing before it ever opened, the server may be refusing this page's
 * origin (a proxy that rewrites Host, say); browsers hide the HTTP status of a refused upgrade, so
 * the page asks `GET /api/origin-check` and shows the server's hint (what to set in ALLOWED_ORIGINS).
 */
import { byId, h } from "./dom";

/** Asks once; shows the banner when the origin is refused. */
export async function checkOrigin(stillFailing: () => boolean): Promise<void> {
  try {
    const res = await fetch(`/api/origin-check?origin=${encodeURIComponent(location.origin)}`);
    if (!res.ok) return;
    const verdict = (await res.json()) as { allowed?: unknown; hint?: unknown };
    if (verdict.allowed !== false || !stillFailing()) return;
    const hint =
      typeof verdict.hint === "string" ? verdict.hint : "Ask whoever runs it to set ALLOWED_ORIGINS.";
    showBanner([h("strong", {}, "This server does not accept connections from this page's address. "), hint]);
  } catch {
    // The server is unreachable: the header already says so.
  }
}

export function showBanner(content: Array<string | Node> | undefined): void {
  const el = byId("banner");
  el.hidden = content === undefined;
  el.replaceChildren(...(content ?? []));
}
