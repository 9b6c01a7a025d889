/**
 * Serves a page that is already built (runtime-neutral: web APIs and node: modules only, no `Bun.`):
 * compressed once (br and gzip), one strong ETag per coding, chosen by `Accept-Encoding`, with the
 * CSP that lets only the page's own script and style run. The HTML embeds its script, so it is
 * `no-cache`: browsers revalidate each load and get a 304 while the build is the same.
 *
 * Another runtime (the Deno entry) gets the page without Bun.build at run time: at build time,
 * `bun server/page-build.ts dist/page.json` (`npm run build` does it too) writes the page built and
 * compressed, as a `PageArtifact` in JSON; then at run time
 *
 *   const page = fromArtifact(JSON.parse(await Deno.readTextFile("dist/page.json")));
 *   // per request:
 *   return pageResponse(page, req);
 *
 * (or `await preparePage(built)` from a `BuiltPage`, compressing at start.)
 */
import { Buffer } from "node:buffer";
import { type Coding, chooseEncoding, compressAll, noneMatch } from "./compress";

/** The page as the build leaves it (server/page-build.ts): one HTML file and the CSP hashes of what it inlines. */
export interface BuiltPage {
  /** page.html with the bundled script and the minified style inlined. */
  html: string;
  /** `sha256-BASE64` of the inline script's text, for `script-src`. */
  scriptHash: string;
  /** `sha256-BASE64` of the inline style's text, for `style-src`. */
  styleHash: string;
}

/** One stored form of the page: its bytes and its strong ETag. */
interface Variant {
  body: Uint8Array<ArrayBuffer>;
  etag: string;
}

/** A built page ready to serve: every coding compressed, every ETag and the CSP computed. */
export interface PreparedPage {
  csp: string;
  identity: Variant;
  encoded: Record<Coding, Variant>;
}

/** Compresses the built page in every coding and derives its ETags and CSP (once per process). */
export async function preparePage(built: BuiltPage): Promise<PreparedPage> {
  // Only this exact script and style may run: injected markup could execute nothing even if it got in.
  const csp = [
    "default-src 'none'",
    `script-src '${built.scriptHash}'`,
    `style-src '${built.styleHash}'`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
  // One ETag per coding (the same tag for different bytes would confuse caches), all from the HTML.
  const tag = (await sha256(built.html)).slice("sha256-".length, "sha256-".length + 22).replace(/[+/]/g, "_");
  const compressed = await compressAll(built.html);
  return {
    csp,
    identity: { body: new TextEncoder().encode(built.html), etag: `"${tag}"` },
    encoded: {
      br: { body: compressed.br, etag: `"${tag}-br"` },
      gzip: { body: compressed.gzip, etag: `"${tag}-gzip"` },
    },
  };
}

/**
 * A prepared page as JSON, compressed bodies in base64: what the build writes (page-build.ts) and
 * the binary or another runtime loads with `fromArtifact`, so none of them compresses at start.
 */
export interface PageArtifact {
  csp: string;
  /** The identity ETag; the coded forms add `-br` and `-gzip` inside the quotes. */
  etag: string;
  html: string;
  br: string;
  gzip: string;
}

export function toArtifact(page: PreparedPage): PageArtifact {
  const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");
  return {
    csp: page.csp,
    etag: page.identity.etag,
    html: new TextDecoder().decode(page.identity.body),
    br: base64(page.encoded.br.body),
    gzip: base64(page.encoded.gzip.body),
  };
}

export function fromArtifact(artifact: PageArtifact): PreparedPage {
  const bytes = (base64: string) => new Uint8Array(Buffer.from(base64, "base64"));
  const coded = (coding: Coding) => artifact.etag.replace(/"$/, `-${coding}"`);
  return {
    csp: artifact.csp,
    identity: { body: new TextEncoder().encode(artifact.html), etag: artifact.etag },
    encoded: {
      br: { body: bytes(artifact.br), etag: coded("br") },
      gzip: { body: bytes(artifact.gzip), etag: coded("gzip") },
    },
  };
}

/** `sha256-BASE64` of the text's UTF-8 bytes: the form CSP hashes take. */
export async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return `sha256-${Buffer.from(digest).toString("base64")}`;
}

/** The page's sizes in bytes as served: raw, br and gzip. */
export function preparedSizes(page: PreparedPage): { identity: number; br: number; gzip: number } {
  return {
    identity: page.identity.body.length,
    br: page.encoded.br.body.length,
    gzip: page.encoded.gzip.body.length,
  };
}

/**
 * The page at `GET /` (and HEAD): br or gzip when `Accept-Encoding` takes it, else identity; a 304
 * without a body when `If-None-Match` names the ETag of the form chosen. Without a request: the
 * uncompressed page.
 */
export function pageResponse(page: PreparedPage, req?: Request): Response {
  const coding = chooseEncoding(req?.headers.get("accept-encoding"));
  const variant = coding === "identity" ? page.identity : page.encoded[coding];
  const headers: Record<string, string> = {
    "cache-control": "no-cache",
    etag: variant.etag,
    vary: "Accept-Encoding",
    "content-security-policy": page.csp,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
  };
  if (req && noneMatch(req.headers.get("if-none-match"), variant.etag)) {
    return new Response(null, { status: 304, headers });
  }
  headers["content-type"] = "text/html; charset=utf-8";
  if (coding !== "identity") headers["content-encoding"] = coding;
  return new Response(variant.body, { headers });
}
