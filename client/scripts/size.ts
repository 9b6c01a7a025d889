/**
 * What the client package adds to a browser bundle: the package is built (client/dist), then small
 * programs importing it are bundled for browsers by Bun, minified, with zod included where it is
 * used, and measured raw, gzip (level 9) and brotli (quality 11).
 *
 *   bun client/scripts/size.ts        (npm run size:client, or npm run size in client/)
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { brotliCompressSync, constants } from "node:zlib";
import { buildClient } from "./build";

const DIST = join(import.meta.dir, "..", "dist");

/** Programs to measure: what they import from the package. */
const PROGRAMS: Array<{ name: string; code: string }> = [
  {
    name: "`ChatClientV2` from `@bun-chat/client/v2` (no zod)",
    code: `import { ChatClientV2 } from "${DIST}/v2/index.js"; globalThis.x = ChatClientV2;`,
  },
  {
    name: "`ChatClient` (v1) from `@bun-chat/client`, with zod",
    code: `import { ChatClient } from "${DIST}/index.js"; globalThis.x = ChatClient;`,
  },
  {
    name: "everything of `@bun-chat/client` (v1 and v2), with zod",
    code: `export * from "${DIST}/index.js";`,
  },
];

export interface Size {
  name: string;
  minified: number;
  gzip: number;
  brotli: number;
}

export async function measure(): Promise<Size[]> {
  await buildClient(DIST);
  const dir = mkdtempSync(join(tmpdir(), "client-size-"));
  try {
    const sizes: Size[] = [];
    for (const [i, program] of PROGRAMS.entries()) {
      const entry = join(dir, `program-${i}.js`);
      writeFileSync(entry, program.code);
      const built = await Bun.build({ entrypoints: [entry], target: "browser", format: "esm", minify: true });
      if (!built.success) throw new AggregateError(built.logs, `bundling ${program.name} failed`);
      const bytes = new Uint8Array(await (built.outputs[0] as Blob).arrayBuffer());
      sizes.push({
        name: program.name,
        minified: bytes.length,
        gzip: Bun.gzipSync(bytes, { level: 9 }).length,
        brotli: brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
      });
    }
    return sizes;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const n = (bytes: number) => bytes.toLocaleString("en");
  console.log("| program | minified | gzip | brotli |\n| --- | ---: | ---: | ---: |");
  for (const s of await measure())
    console.log(`| ${s.name} | ${n(s.minified)} B | ${n(s.gzip)} B | ${n(s.brotli)} B |`);
}
