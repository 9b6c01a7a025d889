/** #outbox: the reader's messages not yet confirmed, each showing sending or failed (with retry and discard). */
import type { OutboxEntry } from "../outbox";
import { h } from "./dom";

export interface OutboxActions {
  retry(id: string): void;
  discard(id: string): void;
}

export class OutboxView {
  private readonly lines = new Map<string, HTMLLIElement>();

  constructor(
    private readonly list: HTMLOListElement,
    private readonly actions: OutboxActions,
  ) {}

  /** Shows the entry in its state; a sent entry leaves (its message is in #chat by then). */
  update(entry: OutboxEntry): void {
    const old = this.lines.get(entry.id);
    if (entry.state === "sent") {
      old?.remove();
      this.lines.delete(entry.id);
      return;
    }
    const line = this.line(entry);
    if (old) old.replaceWith(line);
    else this.list.append(line);
    this.lines.set(entry.id, line);
  }

  private line(entry: OutboxEntry): HTMLLIElement {
    const text = h("span", { class: "text" }, entry.text);
    if (entry.state === "sending") {
      return h("li", { class: "pending sending" }, h("span", { class: "status" }, "sending…"), text);
    }
    const retry = h("button", { attrs: { type: "button" } }, "Retry");
    retry.addEventListener("click", () => this.actions.retry(entry.id));
    const discard = h("button", { attrs: { type: "button" } }, "Discard");
    discard.addEventListener("click", () => {
      this.actions.discard(entry.id);
      this.lines.get(entry.id)?.remove();
      this.lines.delete(entry.id);
    });
    const reason = entry.error ? `${entry.error.message} (${entry.error.code})` : "not sent";
    return h(
      "li",
      { class: "pending failed", attrs: { role: "alert" } },
      h("span", { class: "status" }, "failed"),
      text,
      h("span", { class: "reason" }, reason),
      h("span", { class: "actions" }, retry, discard),
    );
  }
}
