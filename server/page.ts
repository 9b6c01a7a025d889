/**
 * The browser page for the Bun server: the page built and compressed ahead of time when the binary
 * carries one (server/page-prebuilt.ts), else built from client/page with Bun.build and compressed
 * on the first request (server/page-build.ts), then served by server/page-serve.ts (ETags, CSP).
 */
import { PREBUILT_PAGE } from "./page-prebuilt";
import { fromArtifact, type PreparedPage, pageResponse, preparedSizes, preparePage } from "./page-serve";

let prepared: Promise<PreparedPage> | undefined;

/** The page, prepared once (the first call builds it; a failed build is retried on the next call). */
function preparedPage(): Promise<PreparedPage> {
  prepared ??= (async () => {
    if (PREBUILT_PAGE) return fromArtifact(PREBUILT_PAGE);
    // Imported only here: the binary never runs Bun.build (it has no client sources to build).
    const { buildPage } = await import("./page-build");
    return preparePage(await buildPage());
  })().catch((err) => {
    prepared = undefined;
    throw err;
  });
  return prepared;
}

/** The page's sizes in bytes as served: raw, br and gzip (for tests and notes). */
export async function pageSizes(): Promise<{ identity: number; br: number; gzip: number }> {
  return preparedSizes(await preparedPage());
}

/**
 * The page at `GET /` (and HEAD): br or gzip when `Accept-Encoding` takes it, else identity; a 304
 * without a body when `If-None-Match` names the ETag of the form chosen. Without a request: the
 * uncompressed page.
 */
export async function browserPage(req?: Request): Promise<Response> {
  return pageResponse(await preparedPage(), req);
}
