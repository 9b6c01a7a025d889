/** Serves the browser page: client/page bundled with Bun.build once per process, inlined into one HTML answer. */
import { join } from "node:path";

const PAGE_DIR = join(import.meta.dir, "../client/page");

interface BuiltPage {
  html: string;
  csp: string;
}

let built: Promise<BuiltPage> | undefined;

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
  const style = await Bun.file(join(PAGE_DIR, "page.css")).text();
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
  return { html, csp };
}

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return `sha256-${Buffer.from(digest).toString("base64")}`;
}

/** The page at `GET /`; the first request builds it (a failed build is retried on the next request). */
export async function browserPage(): Promise<Response> {
  built ??= build().catch((err) => {
    built = undefined;
    throw err;
  });
  const page = await built;
  return new Response(page.html, {
    headers: {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-cache",
      "content-security-policy": page.csp,
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
    },
  });
}
