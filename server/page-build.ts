/**
 * Builds the browser page (Bun only: Bun.build; at build time, or on the first request of a dev
 * server): client/page/main.ts bundled with the protocol it imports and page.css minified, both
 * inlined into page.html. `bun server/page-build.ts FILE` writes it compressed, as a `PageArtifact`
 * in JSON, for binaries and other runtimes that serve it with server/page-serve.ts.
 */
import { mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { type BuiltPage, type PageArtifact, preparePage, sha256, toArtifact } from "./page-serve";

const PAGE_DIR = join(import.meta.dir, "../client/page");

/** page.css minified by Bun's CSS bundler (the page is inlined whole, so every byte is paid per load). */
async function minifiedCss(path: string): Promise<string> {
  const result = await Bun.build({ entrypoints: [path], minify: true });
  const output = result.outputs[0];
  if (!result.success || !output) throw new AggregateError(result.logs, "bundling the page's CSS failed");
  return (await output.text()).trim();
}

/** Bundles main.ts with the protocol it imports, then inlines it and page.css into page.html. */
export async function buildPage(): Promise<BuiltPage> {
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
  return { html, scriptHash: await sha256(script), styleHash: await sha256(style) };
}

/** Builds and compresses the page, and writes it to `path` as a `PageArtifact` in JSON (creating the directory). */
export async function writePageArtifact(path: string): Promise<PageArtifact> {
  const artifact = toArtifact(await preparePage(await buildPage()));
  await mkdir(dirname(path), { recursive: true });
  // Laid out as biome formats JSON, so `biome check .` passes over a dist/ that holds it.
  await Bun.write(path, `${JSON.stringify(artifact, null, 2)}\n`);
  return artifact;
}

if (import.meta.main) {
  const path = process.argv[2];
  if (!path) {
    console.error("usage: bun server/page-build.ts FILE   (writes the built page, compressed, as JSON)");
    process.exit(2);
  }
  const page = await writePageArtifact(path);
  console.log(`${path}: ${page.html.length} characters of HTML, ${page.etag}`);
}
