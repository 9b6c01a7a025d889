/**
 * `npm run build`: the whole server as one executable, dist/chat-server (`bun build --compile` of
 * server.ts), with the browser page built and compressed first and carried inside, so it runs with
 * nothing beside it: no node_modules, no client sources. Also writes dist/page.json, that page for
 * entries on other runtimes (see server/page-serve.ts).
 */
import { dirname, join } from "node:path";
import type { BunPlugin } from "bun";
import { writePageArtifact } from "../page-build";
import type { PageArtifact } from "../page-serve";

const ROOT = join(import.meta.dir, "..", "..");
export const DEFAULT_OUTFILE = join(ROOT, "dist", "chat-server");

/** Puts the built page into server/page-prebuilt.ts as the bundle reads it (the file itself is untouched). */
function prebuiltPage(page: PageArtifact): BunPlugin {
  return {
    name: "prebuilt-page",
    setup(build) {
      build.onLoad({ filter: /[\\/]server[\\/]page-prebuilt\.ts$/ }, () => ({
        contents: `export const PREBUILT_PAGE = ${JSON.stringify(page)};`,
        loader: "ts",
      }));
    },
  };
}

export interface BuiltBinary {
  outfile: string;
  /** The executable's size in bytes. */
  bytes: number;
  /** Time the build took, in milliseconds. */
  ms: number;
}

/** Builds and compresses the page, then compiles server.ts with it into `outfile` (page.json is written beside it). */
export async function buildBinary(outfile = DEFAULT_OUTFILE): Promise<BuiltBinary> {
  const started = performance.now();
  const page = await writePageArtifact(join(dirname(outfile), "page.json"));
  const result = await Bun.build({
    entrypoints: [join(ROOT, "server.ts")],
    target: "bun",
    format: "esm",
    // Names kept (170 KB of 110 MB), so a stack trace in the logs reads as the source does.
    minify: { whitespace: true, syntax: true, identifiers: false },
    sourcemap: "none",
    // Parsed ahead of time: starts in about 25 ms instead of 40, for 3 MB more (README, measured).
    bytecode: true,
    // Runs like `bun server.ts`: a .env in the working directory is read; no bunfig or package.json is.
    compile: { outfile, autoloadDotenv: true, autoloadBunfig: false },
    plugins: [prebuiltPage(page)],
  });
  if (!result.success) throw new AggregateError(result.logs, "compiling the server failed");
  return { outfile, bytes: Bun.file(outfile).size, ms: performance.now() - started };
}

if (import.meta.main) {
  const outfile = process.argv[2] ?? DEFAULT_OUTFILE;
  const built = await buildBinary(outfile);
  console.log(`${built.outfile}: ${built.bytes} bytes, built in ${(built.ms / 1000).toFixed(1)} s`);
}
