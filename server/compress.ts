/**
 * Content negotiation for answers built once and kept in memory (the page): the coding an
 * `Accept-Encoding` asks for, the bodies compressed ahead of time, and `If-None-Match` against an ETag.
 */
import { promisify } from "node:util";
import { brotliCompress, constants, gzip } from "node:zlib";

/** The codings we compress to, in our order of preference when the client likes them equally. */
export const CODINGS = ["br", "gzip"] as const;
export type Coding = (typeof CODINGS)[number];

const brotli = promisify(brotliCompress);
const gzipAsync = promisify(gzip);

/**
 * The coding to answer with: the acceptable one (q > 0) of `offered` with the highest q, br on a
 * tie; `identity` when the header is absent or accepts neither. A coding not named is acceptable
 * only through `*`; `q=0` (or an unreadable q) refuses it. Identity is the fallback even when
 * refused: RFC 9110 lets a server send it rather than 406, and every client can read it.
 */
export function chooseEncoding(
  header: string | null | undefined,
  offered: readonly Coding[] = CODINGS,
): Coding | "identity" {
  if (header === null || header === undefined) return "identity";
  const weights = new Map<string, number>();
  for (const part of header.split(",")) {
    const [rawName = "", ...params] = part.split(";");
    let name = rawName.trim().toLowerCase();
    if (name === "") continue;
    if (name === "x-gzip") name = "gzip";
    let q = 1;
    for (const param of params) {
      const eq = param.indexOf("=");
      if (eq < 0 || param.slice(0, eq).trim().toLowerCase() !== "q") continue;
      q = parseQ(param.slice(eq + 1).trim());
    }
    // Named twice: the less willing wins, so a q=0 anywhere is honoured.
    weights.set(name, Math.min(q, weights.get(name) ?? 1));
  }
  let best: Coding | "identity" = "identity";
  let bestQ = 0;
  for (const coding of offered) {
    const q = weights.get(coding) ?? weights.get("*") ?? 0;
    if (q > bestQ) {
      best = coding;
      bestQ = q;
    }
  }
  return best;
}

/** RFC 9110's qvalue: 0 to 1 with at most three decimals; anything else counts as 0 (not acceptable). */
function parseQ(text: string): number {
  if (!/^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(text)) return 0;
  return Number(text);
}

/** The body in each coding, compressed as hard as they go (this runs once per build, off the event loop). */
export async function compressAll(body: string): Promise<Record<Coding, Uint8Array<ArrayBuffer>>> {
  const bytes = Buffer.from(body, "utf8");
  const [br, gz] = await Promise.all([
    brotli(bytes, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
        [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
        [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
      },
    }),
    gzipAsync(bytes, { level: constants.Z_BEST_COMPRESSION }),
  ]);
  return { br: new Uint8Array(br), gzip: new Uint8Array(gz) };
}

/**
 * Whether `If-None-Match` names `etag` (or is `*`): the client's copy is current and a 304 will do.
 * The comparison is the weak one RFC 9110 prescribes for this header, so `W/"x"` matches `"x"`.
 */
export function noneMatch(header: string | null, etag: string): boolean {
  if (header === null) return false;
  if (header.trim() === "*") return true;
  const wanted = etag.replace(/^W\//, "");
  for (const match of header.matchAll(/(?:W\/)?("[^"]*")/g)) {
    if (match[1] === wanted) return true;
  }
  return false;
}
