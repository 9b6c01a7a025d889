/**
 * The compact encoding of the Unicode tables in data.ts: written by generate.ts, read by tables.ts.
 *
 * Numbers are written in base 43 with two alphabets of printable ASCII (no quote, no backslash):
 * every digit but the last comes from the upper one, so numbers need no separators.
 */
const FIRST_DIGIT = 0x28;
const BASE = 43;

function digitChar(d: number, last: boolean): string {
  let c = FIRST_DIGIT + d + (last ? 0 : BASE);
  if (c >= 0x5c) c++; // skip the backslash
  return String.fromCharCode(c);
}

/** Appends `n` (a whole number >= 0) to `out`. */
export function writeNumber(out: string[], n: number): void {
  const digits: number[] = [];
  do {
    digits.unshift(n % BASE);
    n = Math.floor(n / BASE);
  } while (n > 0);
  digits.forEach((d, i) => {
    out.push(digitChar(d, i === digits.length - 1));
  });
}

/** Appends a signed whole number (zigzag: 0, -1, 1, -2, ... as 0, 1, 2, 3, ...). */
export function writeSigned(out: string[], n: number): void {
  writeNumber(out, n < 0 ? -2 * n - 1 : 2 * n);
}

export class NumberReader {
  private at = 0;
  constructor(private readonly text: string) {}

  get done(): boolean {
    return this.at >= this.text.length;
  }

  number(): number {
    let n = 0;
    for (;;) {
      let c = this.text.charCodeAt(this.at++);
      if (Number.isNaN(c)) throw new Error("truncated Unicode table");
      if (c > 0x5c) c--;
      const d = c - FIRST_DIGIT;
      if (d < BASE) return n * BASE + d;
      n = n * BASE + d - BASE;
    }
  }

  signed(): number {
    const z = this.number();
    return z % 2 === 1 ? -(z + 1) / 2 : z / 2;
  }
}

/**
 * A code point mapping (source -> string). Records, sources ascending, each starting at
 * `previous source + gap`: `gap 0 count stride delta` is a run of `count + 1` sources `stride` apart,
 * each mapped to the one code point `source + delta`; `gap L cp d2 ... dL` (L >= 1) maps one source
 * to L code points, the first as is and each next one as a difference from the one before.
 */
export function decodeMapping(text: string): Map<number, string> {
  const map = new Map<number, string>();
  const r = new NumberReader(text);
  let source = 0;
  while (!r.done) {
    source += r.number();
    const length = r.number();
    if (length === 0) {
      const count = r.number() + 1;
      const stride = r.number() + 1;
      const delta = r.signed();
      for (let i = 0; i < count; i++, source += stride) map.set(source, String.fromCodePoint(source + delta));
      source -= stride;
    } else {
      let cp = r.number();
      let target = String.fromCodePoint(cp);
      for (let i = 1; i < length; i++) {
        cp += r.signed();
        target += String.fromCodePoint(cp);
      }
      map.set(source, target);
    }
  }
  return map;
}

/** Script sets: each a count then script numbers; set 0 is the empty one, standing for Common/Inherited. */
export function decodeSets(text: string): number[][] {
  const sets: number[][] = [];
  const r = new NumberReader(text);
  while (!r.done) {
    const n = r.number();
    const set: number[] = [];
    for (let i = 0; i < n; i++) set.push(r.number());
    sets.push(set);
  }
  return sets;
}

/** Ranges as (gap from the previous start, set number) pairs; a range ends where the next begins. */
export function decodeRanges(text: string): { starts: Int32Array; sets: Int32Array } {
  const starts: number[] = [];
  const sets: number[] = [];
  const r = new NumberReader(text);
  let start = 0;
  while (!r.done) {
    start += r.number();
    starts.push(start);
    sets.push(r.number());
  }
  return { starts: Int32Array.from(starts), sets: Int32Array.from(sets) };
}
