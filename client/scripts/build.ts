/**
 * Builds the client package into client/dist (or `--outdir DIR`): ESM of its two entry points (`.`
 * and `./v2`) by Bun's bundler, with code shared between them in chunks (one ChatError class for
 * both) and zod left to the package's dependency; `.d.ts` files by tsc (client/tsconfig.build.json),
 * their relative imports given the `.js` that Node's ESM resolution (`moduleResolution: nodenext`) wants.
 *
 *   bun client/scripts/build.ts [--outdir DIR]      (npm run build:client, or npm run build in client/)
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";

const CLIENT = join(import.meta.dir, "..");
const ROOT = join(CLIENT, "..");

/** The package's entry points, as source files under client/. */
export const ENTRY_POINTS = [join(CLIENT, "index.ts"), join(CLIENT, "v2", "index.ts")];

export async function buildClient(outdir: string = join(CLIENT, "dist")): Promise<void> {
  rmSync(outdir, { recursive: true, force: true });
  const built = await Bun.build({
    entrypoints: ENTRY_POINTS,
    root: CLIENT,
    outdir,
    target: "browser",
    format: "esm",
    splitting: true,
    sourcemap: "linked",
    external: ["zod"],
    naming: { chunk: "chunks/[name]-[hash].[ext]" },
  });
  if (!built.success) throw new AggregateError(built.logs, "the client's bundle failed");
  const types = join(outdir, "types");
  const tsc = Bun.spawnSync(
    ["node", join(ROOT, "node_modules/typescript/bin/tsc"), "-p", join(CLIENT, "tsconfig.build.json")].concat(
      ["--outDir", types],
    ),
    { stdout: "inherit", stderr: "inherit" },
  );
  if (tsc.exitCode !== 0)
    throw new Error(`tsc failed (exit ${tsc.exitCode}) writing the client's declarations`);
  for (const file of walk(types)) {
    if (file.endsWith(".d.ts"))
      writeFileSync(file, withJsSpecifiers(readFileSync(file, "utf8"), file, types));
  }
}

/** Every file under `dir`. */
function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

const RELATIVE = /(\bfrom\s*|\bimport\s*\(\s*)(["'])(\.\.?(?:\/[^"']*)?)\2/g;

/**
 * Gives each relative import of a declaration file the `.js` of the module it names (`./x` ->
 * `./x.js`, `../protocol` -> `../protocol/index.js`), looked up beside the source it came from.
 */
function withJsSpecifiers(text: string, file: string, types: string): string {
  const sourceDir = join(ROOT, relative(types, dirname(file)));
  return text.replace(RELATIVE, (_match, lead: string, quote: string, spec: string) => {
    if (/\.(?:js|mjs|cjs|json)$/.test(spec)) return `${lead}${quote}${spec}${quote}`;
    const target = resolve(sourceDir, spec);
    let fixed: string;
    if (existsSync(`${target}.ts`)) fixed = `${spec}.js`;
    else if (existsSync(join(target, "index.ts"))) fixed = `${spec.replace(/\/$/, "")}/index.js`;
    else throw new Error(`${file}: cannot tell which module "${spec}" is`);
    return `${lead}${quote}${fixed}${quote}`;
  });
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { outdir: { type: "string" } } });
  const outdir = resolve(values.outdir ?? join(CLIENT, "dist"));
  const started = performance.now();
  await buildClient(outdir);
  console.log(`built the client package in ${outdir} (${Math.round(performance.now() - started)} ms)`);
}
