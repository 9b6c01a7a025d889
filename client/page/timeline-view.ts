/** #chat: one li per message, plus join/leave/rename, info and error lines; history above, live below. */
import type { ChatMessage } from "../../protocol";
import { actionOf } from "../commands";
import { h } from "./dom";
import { timeElement } from "./format-time";
import { paintNick } from "./nick-colour";

/** How close to the bottom (px) still counts as reading the newest messages. */
const BOTTOM_SLACK = 48;
/** How close to the top (px) asks for older history. */
const TOP_SLACK = 80;

export type LineKind = "join" | "leave" | "rename" | "info" | "error";

export interface TimelineParts {
  scroller: HTMLElement;
  list: HTMLOListElement;
  older: HTMLButtonElement;
  jump: HTMLButtonElement;
}

export class TimelineView {
  private oldest: number | undefined;
  private newest = 0;
  private hasMore = false;
  private loading = false;
  private unseen = 0;

  constructor(
    private readonly parts: TimelineParts,
    private readonly isOwn: (nick: string) => boolean,
    /** Asks for the page of messages before `before`. */
    private readonly loadOlder: (before: number) => boolean,
  ) {
    parts.scroller.addEventListener("scroll", () => this.scrolled(), { passive: true });
    parts.older.addEventListener("click", () => this.requestOlder());
    parts.jump.addEventListener("click", () => this.toBottom());
  }

  /** Starts over (first welcome, another room, an unfillable gap) with these messages. */
  reset(messages: readonly ChatMessage[], lastSeq: number): void {
    this.parts.list.replaceChildren();
    this.oldest = undefined;
    this.newest = 0;
    this.loading = false;
    this.append(messages);
    // Seqs start at 1 without gaps, so anything above 1 on top means older messages exist.
    this.oldest = messages[0]?.seq ?? lastSeq + 1;
    this.newest = Math.max(this.newest, lastSeq);
    this.setHasMore(this.oldest > 1);
    this.toBottom();
  }

  /** A request for older history that will not be answered (the socket dropped) may be asked again. */
  interrupted(): void {
    this.loading = false;
  }

  /** Appends messages newer than the newest shown; scrolls only if the reader was at the bottom. */
  append(messages: readonly ChatMessage[], follow = false): void {
    const fresh = messages.filter((m) => m.seq > this.newest);
    if (fresh.length === 0) return;
    this.add(
      fresh.map((m) => this.messageLine(m)),
      follow,
    );
    this.newest = (fresh.at(-1) as ChatMessage).seq;
    this.oldest ??= (fresh[0] as ChatMessage).seq;
  }

  /** Puts an older page above what is shown, keeping the reader's place. */
  prepend(messages: readonly ChatMessage[], hasMore: boolean): void {
    this.loading = false;
    const older = messages.filter((m) => this.oldest === undefined || m.seq < this.oldest);
    const { scroller, list } = this.parts;
    const fromBottom = scroller.scrollHeight - scroller.scrollTop;
    list.prepend(...older.map((m) => this.messageLine(m)));
    if (older[0]) this.oldest = older[0].seq;
    scroller.scrollTop = scroller.scrollHeight - fromBottom;
    this.setHasMore(hasMore && (this.oldest ?? 1) > 1);
    this.fill();
  }

  /** A line that is not a chat message: presence, answers to commands, errors. */
  line(kind: LineKind, ...parts: Array<string | Node>): void {
    const li = h(
      "li",
      { class: `event ${kind}` },
      timeElement(new Date().toISOString()),
      " ",
      h("span", {}, ...parts),
    );
    this.add([li], kind === "error" || kind === "info");
  }

  /** A nickname as a coloured span, for lines built by the caller. */
  nick(nick: string): HTMLElement {
    return paintNick(h("span", { class: "nick" }, nick), nick);
  }

  /** Marks a message this page sent (known once its ack names the seq). */
  markOwn(seq: number): void {
    this.parts.list.querySelector(`li[data-seq="${seq}"]`)?.classList.add("own");
  }

  /** Scrolls to the newest line. */
  toBottom(): void {
    const { scroller } = this.parts;
    scroller.scrollTop = scroller.scrollHeight;
    this.unseen = 0;
    this.parts.jump.hidden = true;
  }

  private messageLine(m: ChatMessage): HTMLLIElement {
    const action = actionOf(m.text);
    const classes = ["msg"];
    if (action !== undefined) classes.push("action");
    if (this.isOwn(m.nick)) classes.push("own");
    return h(
      "li",
      { class: classes.join(" "), attrs: { "data-seq": String(m.seq) } },
      // The spaces keep textContent readable ("12:01 alice hello"); the grid ignores them.
      timeElement(m.sentAt),
      " ",
      this.nick(m.nick),
      " ",
      h("span", { class: "text" }, action ?? m.text),
    );
  }

  private add(lines: HTMLLIElement[], follow: boolean): void {
    const stick = follow || this.atBottom();
    this.parts.list.append(...lines);
    if (stick) this.toBottom();
    else {
      this.unseen += lines.length;
      this.parts.jump.hidden = false;
      this.parts.jump.textContent = `↓ ${this.unseen} new`;
    }
  }

  private atBottom(): boolean {
    const { scroller } = this.parts;
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight <= BOTTOM_SLACK;
  }

  private scrolled(): void {
    if (this.atBottom()) {
      this.unseen = 0;
      this.parts.jump.hidden = true;
    }
    if (this.parts.scroller.scrollTop <= TOP_SLACK) this.requestOlder();
  }

  private requestOlder(): void {
    if (!this.hasMore || this.loading || this.oldest === undefined) return;
    this.loading = this.loadOlder(this.oldest);
    this.parts.older.textContent = this.loading ? "Loading older messages…" : "Load older messages";
  }

  /** Too few lines to scroll cannot trigger the scroll-up load: keep loading until the pane fills. */
  private fill(): void {
    const { scroller } = this.parts;
    if (scroller.scrollHeight <= scroller.clientHeight) this.requestOlder();
  }

  private setHasMore(more: boolean): void {
    this.hasMore = more;
    this.parts.older.hidden = !more;
    this.parts.older.textContent = "Load older messages";
    if (more) queueMicrotask(() => this.fill());
  }
}
