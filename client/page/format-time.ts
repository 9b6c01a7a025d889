/** Times in the reader's own locale: hours and minutes on a post, the full date on hover. */
import { h } from "./dom";

const short = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const full = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short" });

export function clock(at: number): string {
  return short.format(at);
}

export function fullDate(at: number): string {
  return full.format(at);
}

export function timeElement(at: number): HTMLTimeElement {
  const iso = new Date(at).toISOString();
  return h("time", { attrs: { datetime: iso, title: fullDate(at) } }, clock(at));
}
