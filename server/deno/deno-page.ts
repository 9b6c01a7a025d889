/**
 * The browser page on Deno, which cannot run Bun.build: the page built ahead of time by
 * `bun server/page-build.ts dist/page.json` (`npm run start:deno` and `npm run build` write it),
 * read once at start and served by page-serve.ts as on Bun. Without that file `GET /` says how to
 * make it.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../chat/log";
import { refuse } from "../http";
import { fromArtifact, type PageArtifact, pageResponse } from "../page-serve";

/** Where the build puts the page: dist/page.json at the top of the checkout. */
export const PAGE_FILE = join(import.meta.dirname ?? ".", "..", "..", "dist", "page.json");

/** The handler of `GET /` for the page in `file`. */
export function prebuiltPage(file: string, log: Logger): (req: Request) => Response {
  let artifact: PageArtifact;
  try {
    artifact = JSON.parse(readFileSync(file, "utf8")) as PageArtifact;
  } catch (err) {
    const hint = `run bun server/page-build.ts ${file} (npm run start:deno does)`;
    log.log("warn", "page_missing", { file, hint, error: String(err) });
    return () => refuse(404, "not_found", `the page is not built: ${hint}`);
  }
  const page = fromArtifact(artifact);
  return (req) => pageResponse(page, req);
}
