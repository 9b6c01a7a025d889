/** Times in the reader's own locale: hours and minutes on a post, the full date on hover. */
import { h } from "./dom";

// Made on first use: building a formatter loads locale data, which the first paint need not wait for.
let short: Intl.DateTimeFormat | undefined;
let full: Intl.DateTimeFormat | undefined;

export function clock(at: number): string {
  short ??= new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
  return short.format(at);
}

export function fullDate(at: number): string {
  full ??= new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short" });
  return full.format(at);
}

export function timeElement(at: number): HTMLTimeElement {
  const iso = new Date(at).toISOString();
  return h("time", { attrs: { datetime: iso, title: fullDate(at) } }, clock(at));
}
