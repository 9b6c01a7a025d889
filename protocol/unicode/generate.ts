/**
 * Writes protocol/unicode/data.ts from the Unicode files of one version:
 *
 *   bun protocol/unicode/generate.ts                 downloads them from www.unicode.org
 *   bun protocol/unicode/generate.ts --from DIR      reads them from DIR (the same file names)
 *
 * Files: confusables.txt (UTS #39), CaseFolding.txt, Scripts.txt, ScriptExtensions.txt,
 * PropertyValueAliases.txt and extracted/DerivedGeneralCategory.txt (read as DerivedGeneralCategory.txt
 * from DIR). Each must say it is of VERSION. The output keeps only what nicknames can reach (see
 * tables.ts), is checked against the full data before it is written, and records each input's SHA-256
 * (so a copy of the files taken from elsewhere can be checked against the one data.ts was made from).
 */
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { decodeMapping, decodeRanges, decodeSets, writeNumber, writeSigned } from "./codec";
import { lookAlikeKeyWith } from "./tables";

const VERSION = "17.0.0";
const OUT = join(import.meta.dir, "data.ts");

const SOURCES: Record<string, string> = {
  "confusables.txt": `https://www.unicode.org/Public/security/${VERSION}/confusables.txt`,
  "CaseFolding.txt": `https://www.unicode.org/Public/${VERSION}/ucd/CaseFolding.txt`,
  "Scripts.txt": `https://www.unicode.org/Public/${VERSION}/ucd/Scripts.txt`,
  "ScriptExtensions.txt": `https://www.unicode.org/Public/${VERSION}/ucd/ScriptExtensions.txt`,
  "PropertyValueAliases.txt": `https://www.unicode.org/Public/${VERSION}/ucd/PropertyValueAliases.txt`,
  "DerivedGeneralCategory.txt": `https://www.unicode.org/Public/${VERSION}/ucd/extracted/DerivedGeneralCategory.txt`,
};

async function readInputs(from: string | undefined): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const [name, url] of Object.entries(SOURCES)) {
    let text: string;
    if (from !== undefined) text = readFileSync(join(from, name), "utf8");
    else {
      const res = await fetch(url).catch((err: unknown) => {
        throw new Error(`cannot download ${url} (${String(err)}); get the files and pass --from DIR`);
      });
      if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
      text = await res.text();
    }
    text = text.replace(/^\uFEFF/, "");
    const head = text.slice(0, 600);
    if (!head.includes(`Version: ${VERSION}`) && !head.includes(`-${VERSION}.txt`)) {
      throw new Error(`${name} is not of Unicode ${VERSION}: ${head.split("\n", 2).join(" / ")}`);
    }
    files.set(name, text);
  }
  return files;
}

/** Data lines as their `;`-separated fields, comments and blanks dropped. */
function rows(text: string): string[][] {
  const out: string[][] = [];
  for (const line of text.split("\n")) {
    const data = line.replace(/#.*/, "").trim();
    if (data) out.push(data.split(";").map((f) => f.trim()));
  }
  return out;
}

function range(field: string): [number, number] {
  const [a, b] = field.split("..");
  const lo = Number.parseInt(a as string, 16);
  return [lo, b === undefined ? lo : Number.parseInt(b, 16)];
}

const cps = (field: string) => field.split(/\s+/).map((h) => Number.parseInt(h, 16));
const str = (points: number[]) => String.fromCodePoint(...points);
const points = (s: string) => [...s].map((c) => c.codePointAt(0) as number);

// ---- parsing ----

interface Ucd {
  /** Letters, marks (Mn, Mc), numbers, `_`, `-`, `.`: every code point a name may hold. */
  nameChars: number[];
  folding: Map<number, number[]>;
  confusables: Map<number, number[]>;
  /** Script_Extensions as short script names; Common and Inherited as []. */
  scx: (cp: number) => string[];
}

function parse(files: Map<string, string>): Ucd {
  const file = (name: string) => files.get(name) as string;
  const nameChars: number[] = [0x2d, 0x2e, 0x5f];
  for (const [r, gc] of rows(file("DerivedGeneralCategory.txt"))) {
    if (!/^(L[ultmo]|Mn|Mc|N[dlo])$/.test(gc as string)) continue;
    const [lo, hi] = range(r as string);
    for (let cp = lo; cp <= hi; cp++) nameChars.push(cp);
  }
  nameChars.sort((a, b) => a - b);

  const folding = new Map<number, number[]>();
  for (const [cp, status, to] of rows(file("CaseFolding.txt"))) {
    if (status === "C" || status === "F") folding.set(Number.parseInt(cp as string, 16), cps(to as string));
  }

  const confusables = new Map<number, number[]>();
  for (const [from, to] of rows(file("confusables.txt"))) {
    confusables.set(Number.parseInt(from as string, 16), cps(to as string));
  }

  const shortName = new Map<string, string>();
  for (const [prop, short, long] of rows(file("PropertyValueAliases.txt"))) {
    if (prop === "sc") shortName.set(long as string, short as string);
  }
  const script = new Map<number, string>();
  for (const [r, long] of rows(file("Scripts.txt"))) {
    const short = shortName.get(long as string);
    if (!short) throw new Error(`no short name for script ${long}`);
    const [lo, hi] = range(r as string);
    for (let cp = lo; cp <= hi; cp++) script.set(cp, short);
  }
  const extensions = new Map<number, string[]>();
  for (const [r, names] of rows(file("ScriptExtensions.txt"))) {
    const [lo, hi] = range(r as string);
    for (let cp = lo; cp <= hi; cp++) extensions.set(cp, (names as string).split(/\s+/));
  }
  const scx = (cp: number): string[] => {
    const set = extensions.get(cp) ?? [script.get(cp) ?? "Zzzz"];
    return set.length === 1 && (set[0] === "Zyyy" || set[0] === "Zinh") ? [] : set;
  };
  return { nameChars, folding, confusables, scx };
}

// ---- the reference: the full tables, straight from the files ----

function referenceKey(ucd: Ucd, s: string): { key: string; rounds: number } {
  const fold = (x: string) => points(x).flatMap((cp) => ucd.folding.get(cp) ?? [cp]);
  const skel = (x: string) =>
    str(
      points(x.normalize("NFD").replace(/\p{Default_Ignorable_Code_Point}/gu, "")).flatMap(
        (cp) => ucd.confusables.get(cp) ?? [cp],
      ),
    ).normalize("NFD");
  let key = s;
  for (let rounds = 0; ; rounds++) {
    const next = skel(str(fold(key.normalize("NFKD"))));
    if (next === key) return { key, rounds };
    if (rounds > 8) throw new Error(`no fixed point for ${JSON.stringify(s)}`);
    key = next;
  }
}

/** Every code point that folding, NFD and the confusable mapping can reach from a name character. */
function reachable(ucd: Ucd): Set<number> {
  const seen = new Set<number>(ucd.nameChars);
  const todo = [...ucd.nameChars];
  const visit = (s: string) => {
    for (const cp of points(s + s.normalize("NFD") + s.normalize("NFKD"))) {
      if (!seen.has(cp)) {
        seen.add(cp);
        todo.push(cp);
      }
    }
  };
  while (todo.length > 0) {
    const cp = todo.pop() as number;
    visit(str([cp]));
    const folded = ucd.folding.get(cp);
    if (folded) visit(str(folded));
    const proto = ucd.confusables.get(cp);
    if (proto) visit(str(proto));
  }
  return seen;
}

// ---- encoding ----

function encodeMapping(map: Map<number, number[]>, keep: Set<number>): string {
  const entries = [...map].filter(([cp]) => keep.has(cp)).sort((a, b) => a[0] - b[0]);
  const out: string[] = [];
  let prev = 0;
  const single = (i: number) => (entries[i]?.[1].length === 1 ? entries[i] : undefined);
  for (let i = 0; i < entries.length; ) {
    const [source, target] = entries[i] as [number, number[]];
    let run = 1;
    let stride = 1;
    if (target.length === 1) {
      const delta = (target[0] as number) - source;
      for (const s of [1, 2]) {
        let n = 1;
        for (;;) {
          const next = single(i + n);
          if (!next || next[0] !== source + n * s || (next[1][0] as number) - next[0] !== delta) break;
          n++;
        }
        if (n > run) {
          run = n;
          stride = s;
        }
      }
    }
    writeNumber(out, source - prev);
    if (run >= 3) {
      writeNumber(out, 0);
      writeNumber(out, run - 1);
      writeNumber(out, stride - 1);
      writeSigned(out, (target[0] as number) - source);
      prev = source + (run - 1) * stride;
      i += run;
    } else {
      writeNumber(out, target.length);
      writeNumber(out, target[0] as number);
      for (let j = 1; j < target.length; j++)
        writeSigned(out, (target[j] as number) - (target[j - 1] as number));
      prev = source;
      i++;
    }
  }
  return out.join("");
}

function encodeScripts(ucd: Ucd): { names: string; sets: string; ranges: string } {
  const names: string[] = [];
  const setKeys = new Map<string, number>([["", 0]]);
  const setList: number[][] = [[]];
  const setOf = (cp: number) => {
    const nums = ucd
      .scx(cp)
      .map((n) => {
        let i = names.indexOf(n);
        if (i < 0) i = names.push(n) - 1;
        return i;
      })
      .sort((a, b) => a - b);
    const key = nums.join(" ");
    let i = setKeys.get(key);
    if (i === undefined) {
      i = setList.push(nums) - 1;
      setKeys.set(key, i);
    }
    return i;
  };
  // Only name characters matter: a range runs on over whatever lies between them.
  const ranges: string[] = [];
  let current = -1;
  let prevStart = 0;
  for (const cp of ucd.nameChars) {
    const set = setOf(cp);
    if (set === current) continue;
    writeNumber(ranges, cp - prevStart);
    writeNumber(ranges, set);
    prevStart = cp;
    current = set;
  }
  const sets: string[] = [];
  for (const set of setList) {
    writeNumber(sets, set.length);
    for (const n of set) writeNumber(sets, n);
  }
  return { names: names.join(" "), sets: sets.join(""), ranges: ranges.join("") };
}

// ---- checking what was encoded against the reference ----

function check(ucd: Ucd, keep: Set<number>, data: Record<string, string>): { maxRounds: number } {
  const folding = decodeMapping(data.CASE_FOLDING as string);
  const confusables = decodeMapping(data.CONFUSABLES as string);
  const names = (data.SCRIPT_NAMES as string).split(" ");
  const sets = decodeSets(data.SCRIPT_SETS as string);
  const { starts, sets: rangeSets } = decodeRanges(data.SCRIPT_RANGES as string);
  let maxRounds = 0;
  // Every name character folds as CaseFolding.txt says.
  for (const cp of keep) {
    const want = ucd.folding.get(cp);
    if (folding.get(cp) !== (want ? str(want) : undefined))
      throw new Error(`folding of U+${cp.toString(16)}`);
  }
  // Every character a key can hold gets the key the full tables give it.
  for (const cp of keep) {
    const ref = referenceKey(ucd, str([cp]));
    const got = lookAlikeKeyWith(folding, confusables, str([cp]));
    if (got !== ref.key) throw new Error(`key of U+${cp.toString(16)}: ${got} != ${ref.key}`);
    maxRounds = Math.max(maxRounds, ref.rounds);
  }
  // Every name character gets its Script_Extensions.
  let r = -1;
  for (const cp of ucd.nameChars) {
    while (r + 1 < starts.length && (starts[r + 1] as number) <= cp) r++;
    const got = (sets[rangeSets[r] as number] ?? []).map((i) => names[i]).join(" ");
    const want = [...ucd.scx(cp)].sort((a, b) => names.indexOf(a) - names.indexOf(b)).join(" ");
    if (got !== want) throw new Error(`scripts of U+${cp.toString(16)}: ${got} != ${want}`);
  }
  return { maxRounds };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const fromAt = argv.indexOf("--from");
  const from = fromAt >= 0 ? argv[fromAt + 1] : undefined;
  const files = await readInputs(from);
  const ucd = parse(files);
  const keep = reachable(ucd);
  // Each round folds an NFKD string, then maps the NFD of what folding gave: only characters that can
  // be there need a confusable entry (no presentation form, CJK compatibility ideograph or precomposed
  // letter). Folding keeps them all, as compareNicks folds names as they are.
  const folded = new Set([...keep].filter((cp) => str([cp]).normalize("NFKD") === str([cp])));
  const mapped = new Set<number>();
  for (const cp of folded)
    for (const c of points(str(ucd.folding.get(cp) ?? [cp]).normalize("NFD"))) mapped.add(c);
  const scripts = encodeScripts(ucd);
  const data: Record<string, string> = {
    CASE_FOLDING: encodeMapping(ucd.folding, keep),
    CONFUSABLES: encodeMapping(ucd.confusables, mapped),
    SCRIPT_NAMES: scripts.names,
    SCRIPT_SETS: scripts.sets,
    SCRIPT_RANGES: scripts.ranges,
  };
  const { maxRounds } = check(ucd, keep, data);
  const hashes = [...files]
    .map(([name, text]) => `//   ${name} sha256 ${createHash("sha256").update(text).digest("hex")}`)
    .join("\n");
  const body = Object.entries(data)
    .map(([name, value]) => `export const ${name} =\n  ${JSON.stringify(value)};\n`)
    .join("\n");
  writeFileSync(
    OUT,
    `// Generated by protocol/unicode/generate.ts from the Unicode ${VERSION} files; do not edit.\n` +
      `// Decoded by tables.ts. Inputs (without a byte order mark):\n${hashes}\n\n` +
      `export const UNICODE_VERSION = "${VERSION}";\n\n${body}`,
  );
  const size = Object.values(data).reduce((n, v) => n + v.length, 0);
  console.log(
    `wrote ${OUT}: ${size} characters of data; ${keep.size} code points kept; ` +
      `fold ${data.CASE_FOLDING?.length}, confusables ${data.CONFUSABLES?.length}, ` +
      `scripts ${scripts.names.length + scripts.sets.length + scripts.ranges.length}; ` +
      `a single character settles in ${maxRounds} rounds at most`,
  );
}

await main();
