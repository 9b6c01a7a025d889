/** Timestamps in the reader's own locale: the time for today, the date too for older messages. */
import { h } from "./dom";

const time = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayAndTime = new Intl.DateTimeFormat(undefined, {
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
});
const full = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });

export function timeElement(iso: string, now: Date = new Date()): HTMLTimeElement {
  const at = new Date(iso);
  const sameDay = at.toDateString() === now.toDateString();
  const label = (sameDay ? time : dayAndTime).format(at);
  return h("time", { attrs: { datetime: iso, title: full.format(at) } }, label);
}
