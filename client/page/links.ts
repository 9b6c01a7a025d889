/**
 * Finding links in text and deciding which may become one: only http and https, and only what the
 * URL parser agrees is such (so `javascript:`, `data:`, `vbscript:` and tricks with spaces, case or
 * control characters stay plain text). Pure: no DOM.
 */

/** A link candidate: `http://` or `https://` and then anything but spaces and angle brackets. */
const URL_START = /\bhttps?:\/\/[^\s<>"]+/giu;
/** Punctuation that ends a sentence rather than the address. */
const TRAILING = /[.,;:!?'*_~]+$/u;

/** The address a link may point at, or undefined when it must stay text. */
export function safeHref(raw: string): string | undefined {
  if (!/^https?:\/\/[^\s]/i.test(raw)) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return undefined;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
  if (url.hostname === "") return undefined;
  return url.href;
}

export interface LinkMatch {
  start: number;
  end: number;
  href: string;
  /** The text as written (what the reader sees). */
  text: string;
}

/** Cuts a trailing `)` that has no `(` inside the address, and sentence punctuation after it. */
function trim(candidate: string): string {
  let s = candidate;
  for (;;) {
    const before = s;
    s = s.replace(TRAILING, "");
    if (s.endsWith(")") && count(s, "(") < count(s, ")")) s = s.slice(0, -1);
    if (s === before) return s;
  }
}

function count(s: string, ch: string): number {
  let n = 0;
  for (const c of s) if (c === ch) n++;
  return n;
}

/** Every safe link in `text`, in order and not overlapping. */
export function findLinks(text: string): LinkMatch[] {
  const found: LinkMatch[] = [];
  for (const m of text.matchAll(URL_START)) {
    const written = trim(m[0]);
    const href = safeHref(written);
    if (href === undefined) continue;
    const start = m.index ?? 0;
    found.push({ start, end: start + written.length, href, text: written });
  }
  return found;
}
