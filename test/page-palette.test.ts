/**
 * Nick colours: every colour of page.css's palette reads at WCAG 4.5:1 or better on every background
 * a nick is drawn on, in the light theme and in the dark one; the colours look different from each
 * other; and a name's colour depends on its nickKey only.
 */
import { describe, expect, it } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { nickColourIndex, PALETTE_SIZE } from "../client/page/palette";

const css = readFileSync(join(import.meta.dir, "../client/page/page.css"), "utf8");
/** Backgrounds under nicks and mentions: the timeline, side panels, a hovered row, own and mentioning posts. */
const BACKGROUNDS = ["--bg", "--side", "--hover", "--own-bg", "--mention-bg", "--raised"];

function block(start: number): string {
  const open = css.indexOf("{", start);
  let depth = 0;
  for (let i = open; i < css.length; i++) {
    if (css[i] === "{") depth++;
    if (css[i] === "}" && --depth === 0) return css.slice(open + 1, i);
  }
  throw new Error("unbalanced page.css");
}

function vars(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/(--[\w-]+):\s*(#[0-9a-f]{6})\s*;/gi))
    out.set(m[1] as string, (m[2] as string).toLowerCase());
  return out;
}

const light = vars(block(css.indexOf(":root")));
const darkBlock = block(css.indexOf("@media (prefers-color-scheme: dark)"));
const dark = vars(darkBlock);

function luminance(hex: string): number {
  const [r, g, b] = [1, 3, 5].map((i) => {
    const c = Number.parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  }) as [number, number, number];
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/** WCAG 2 contrast ratio. */
function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

/** OKLab distance: 0.02 is barely visible, the palette keeps 0.05 between any two colours. */
function oklab(hex: string): [number, number, number] {
  const [r, g, b] = [1, 3, 5].map((i) => {
    const c = Number.parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  }) as [number, number, number];
  const l = Math.cbrt(0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b);
  const m = Math.cbrt(0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b);
  const s = Math.cbrt(0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b);
  return [
    0.2104542553 * l + 0.793617785 * m - 0.0040720468 * s,
    1.9779984951 * l - 2.428592205 * m + 0.4505937099 * s,
    0.0259040371 * l + 0.7827717662 * m - 0.808675766 * s,
  ];
}

describe("the nick palette", () => {
  it("computes WCAG contrast as the spec does", () => {
    expect(contrast("#000000", "#ffffff")).toBeCloseTo(21, 5);
    expect(contrast("#767676", "#ffffff")).toBeCloseTo(4.54, 2);
  });

  for (const [theme, colours] of [
    ["light", light],
    ["dark", dark],
  ] as const) {
    it(`has ${PALETTE_SIZE} colours at 4.5:1 or better on every background of the ${theme} theme`, () => {
      const palette = Array.from({ length: PALETTE_SIZE }, (_, i) => colours.get(`--nick-${i}`));
      expect(palette.every((c) => c !== undefined)).toBe(true);
      const failures: string[] = [];
      for (const bgName of BACKGROUNDS) {
        const bg = colours.get(bgName);
        expect(bg).toBeDefined();
        for (const [i, c] of palette.entries()) {
          const ratio = contrast(c as string, bg as string);
          if (ratio < 4.5) failures.push(`--nick-${i} ${c} on ${bgName} ${bg}: ${ratio.toFixed(2)}`);
        }
      }
      expect(failures).toEqual([]);
    });

    it(`keeps the ${theme} colours apart from each other`, () => {
      const labs = Array.from({ length: PALETTE_SIZE }, (_, i) =>
        oklab(colours.get(`--nick-${i}`) as string),
      );
      for (let i = 0; i < labs.length; i++) {
        for (let j = i + 1; j < labs.length; j++) {
          const [a, b] = [labs[i] as number[], labs[j] as number[]];
          const d = Math.hypot(
            (a[0] as number) - (b[0] as number),
            (a[1] as number) - (b[1] as number),
            (a[2] as number) - (b[2] as number),
          );
          expect(d).toBeGreaterThan(0.05);
        }
      }
    });
  }

  it("also keeps the page's text colours readable", () => {
    for (const colours of [light, dark]) {
      for (const fg of ["--text", "--muted", "--link"]) {
        for (const bg of BACKGROUNDS) {
          expect(contrast(colours.get(fg) as string, colours.get(bg) as string)).toBeGreaterThanOrEqual(4.5);
        }
      }
      expect(
        contrast(colours.get("--accent-ink") ?? "#ffffff", colours.get("--accent") as string),
      ).toBeGreaterThanOrEqual(4.5);
      expect(contrast("#ffffff", colours.get("--mention") as string)).toBeGreaterThanOrEqual(4.5);
    }
  });

  it("gives a name one colour however it is written, and spreads names over the palette", () => {
    expect(nickColourIndex("Ann")).toBe(nickColourIndex("ann"));
    expect(nickColourIndex("ＡＮＮ")).toBe(nickColourIndex("ann"));
    const used = new Set(Array.from({ length: 200 }, (_, i) => nickColourIndex(`user${i}`)));
    expect(used.size).toBe(PALETTE_SIZE);
  });
});
