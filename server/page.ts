/**
 * Serves the browser page: client/page bundled with Bun.build once per process, inlined into one
 * HTML answer, compressed once (br and gzip) and served by `Accept-Encoding` with an ETag. The HTML
 * embeds the script, so it is `no-cache`: browsers revalidate each load and get a 304 while the build
 * is the same.
 */
import { join } from "node:path";
import { type Coding, chooseEncoding, compressAll, noneMatch } from "./compress";

const PAGE_DIR = join(import.meta.dir, "../client/page");

/** One stored form of the page: its bytes and its strong ETag. */
interface Variant {
  body: Uint8Array<ArrayBuffer>;
  etag: string;
}

interface BuiltPage {
  csp: string;
  identity: Variant;
  encoded: Record<Coding, Variant>;
}

let built: Promise<BuiltPage> | undefined;

/** page.css minified by Bun's CSS bundler (the page is inlined whole, so every byte is paid per load). */
async function minifiedCss(path: string): Promise<string> {
  const result = await Bun.build({ entrypoints: [path], minify: true });
  const output = result.outputs[0];
  if (!result.success || !output) throw new AggregateError(result.logs, "bundling the page's CSS failed");
  return (await output.text()).trim();
}

/** Bundles main.ts with the protocol it imports, then inlines it and page.css into page.html. */
async function build(): Promise<BuiltPage> {
  const result = await Bun.build({
    entrypoints: [join(PAGE_DIR, "main.ts")],
    target: "browser",
    format: "esm",
    minify: true,
  });
  const output = result.outputs[0];
  if (!result.success || !output) throw new AggregateError(result.logs, "bundling the browser page failed");
  // "</script" inside the bundle would end the inline script early; "<\/script" means the same in JS.
  const script = (await output.text()).replaceAll("</script", "<\\/script");
  const style = await minifiedCss(join(PAGE_DIR, "page.css"));
  const template = await Bun.file(join(PAGE_DIR, "page.html")).text();
  // Replacer functions: a "$&" in the bundle must not be read as a replacement pattern.
  const html = template.replace("/*STYLE*/", () => style).replace("/*SCRIPT*/", () => script);
  // Only this exact script and style may run: injected markup could execute nothing even if it got in.
  const csp = [
    "default-src 'none'",
    `script-src '${await sha256(script)}'`,
    `style-src '${await sha256(style)}'`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
  // One ETag per coding (the same tag for different bytes would confuse caches), all from the HTML.
  const tag = (await sha256(html)).slice("sha256-".length, "sha256-".length + 22).replace(/[+/]/g, "_");
  const compressed = await compressAll(html);
  return {
    csp,
    identity: { body: new TextEncoder().encode(html), etag: `"${tag}"` },
    encoded: {
      br: { body: compressed.br, etag: `"${tag}-br"` },
      gzip: { body: compressed.gzip, etag: `"${tag}-gzip"` },
    },
  };
}

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return `sha256-${Buffer.from(digest).toString("base64")}`;
}

/** The page, built once (the first call builds it; a failed build is retried on the next call). */
function builtPage(): Promise<BuiltPage> {
  built ??= build().catch((err) => {
    built = undefined;
    throw err;
  });
  return built;
}

/** The page's sizes in bytes as served: raw, br and gzip (for tests and notes). */
export async function pageSizes(): Promise<{ identity: number; br: number; gzip: number }> {
  const page = await builtPage();
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
export async function browserPage(req?: Request): Promise<Response> {
  const page = await builtPage();
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
