/**
 * #chat: the active room's rows (timeline-model.ts) kept in the DOM by key, so a new post adds one
 * row and a reaction rebuilds one; the scroll position follows the newest post when the reader is at
 * the bottom and stays put otherwise; older posts load on scrolling up; the reader's unconfirmed
 * posts sit in #outbox below. Clicks on any row's buttons come here and go out as hooks.
 */
import type { ClientPost, RoomView } from "../v2/api";
import { h, icon } from "./dom";
import { MessageMenu } from "./message-menu";
import { pendingElement, type RowContext, rowElement, rowSignature } from "./message-view";
import { buildRows, GROUP_MS, type Note } from "./timeline-model";

/** How close to the bottom (px) still counts as reading the newest posts. */
const BOTTOM_SLACK = 40;
/** How close to the top (px) asks for older posts. */
const TOP_SLACK = 160;

export interface TimelineHooks {
  loadOlder(room: string): Promise<void>;
  /** The reader reached the bottom (or the newest posts came into view there): time to mark them read. */
  readable(): void;
  reply(seq: number): void;
  react(seq: number, emoji: string, on: boolean): void;
  edit(seq: number, text: string): void;
  remove(seq: number): void;
  retry(id: string): void;
  discard(id: string): void;
  /** An editor closed (saved or cancelled): the composer takes the focus back. */
  editorClosed(): void;
}

export interface TimelineParts {
  scroller: HTMLElement;
  list: HTMLOListElement;
  outbox: HTMLOListElement;
  older: HTMLButtonElement;
  start: HTMLElement;
  jump: HTMLButtonElement;
}

interface Rendered {
  el: HTMLLIElement;
  sig: string;
}

export class TimelineView {
  #room: string | undefined;
  #view: RoomView | undefined;
  #notes: readonly Note[] = [];
  #unreadAfter: number | undefined;
  #rendered = new Map<string, Rendered>();
  #editing: number | undefined;
  #confirming: number | undefined;
  #loading = false;
  #newestSeen = 0;
  /** The reader was at the bottom at the last scroll: a smaller pane (a taller composer) keeps them there. */
  #stuck = true;
  readonly #menu: MessageMenu;

  readonly #parts: TimelineParts;
  readonly #isMe: (nick: string) => boolean;
  readonly #me: () => string;
  readonly #hooks: TimelineHooks;

  constructor(parts: TimelineParts, isMe: (nick: string) => boolean, me: () => string, hooks: TimelineHooks) {
    this.#parts = parts;
    this.#isMe = isMe;
    this.#me = me;
    this.#hooks = hooks;
    const { scroller } = parts;
    this.#menu = new MessageMenu(scroller, (row) => this.#isMe(row.dataset.nick ?? ""));
    scroller.addEventListener("scroll", () => this.#scrolled(), { passive: true });
    scroller.addEventListener("click", (e) => this.#clicked(e));
    scroller.addEventListener("keydown", (e) => this.#keys(e));
    parts.older.addEventListener("click", () => this.#requestOlder());
    new ResizeObserver(() => {
      if (this.#stuck) this.toBottom();
    }).observe(scroller);
    parts.jump.addEventListener("click", () => {
      this.toBottom();
      this.#hooks.readable();
    });
  }

  /** The room shown, its view, the page's notes for it, and where "New messages" goes. */
  show(room: string, view: RoomView, notes: readonly Note[], unreadAfter: number | undefined): void {
    const switched = room !== this.#room;
    if (switched) {
      this.#room = room;
      this.#editing = undefined;
      this.#confirming = undefined;
      this.#loading = false;
      this.#menu.detach();
      this.#parts.list.replaceChildren();
      this.#rendered.clear();
    }
    const { scroller } = this.#parts;
    // Whether the reader is at the bottom is known from the last scroll: measuring now would force a
    // layout before every redraw. Only a reader scrolled up needs the old height (to keep their place).
    const wasAtBottom = switched || this.#stuck;
    const oldFirst = this.#view?.posts[0]?.seq;
    const beforeTop = wasAtBottom ? 0 : scroller.scrollTop;
    const beforeHeight = wasAtBottom ? 0 : scroller.scrollHeight;
    this.#view = view;
    this.#notes = notes;
    this.#unreadAfter = unreadAfter;
    this.#draw();
    const newFirst = view.posts[0]?.seq;
    if (switched) {
      const line = document.getElementById("unread-line");
      if (line && line.offsetTop > scroller.clientHeight / 2) scroller.scrollTop = line.offsetTop - 80;
      else this.toBottom();
    } else if (wasAtBottom) this.toBottom();
    else if (oldFirst !== undefined && newFirst !== undefined && newFirst < oldFirst) {
      scroller.scrollTop = beforeTop + (scroller.scrollHeight - beforeHeight);
    }
    this.#showJump();
    this.#fill();
  }

  /** Shows no room, with a word on what to do. */
  clear(message: string): void {
    this.#room = undefined;
    this.#view = undefined;
    this.#menu.detach();
    this.#rendered.clear();
    this.#parts.list.replaceChildren();
    this.#parts.outbox.replaceChildren();
    this.#parts.older.hidden = true;
    this.#parts.jump.hidden = true;
    this.#parts.start.hidden = message === "";
    this.#parts.start.textContent = message;
  }

  /** Redraws with the same data (after the reader's nick changed, an editor opened...). */
  redraw(): void {
    if (this.#view) this.#draw();
  }

  #context(): RowContext {
    const posts = this.#view?.posts ?? [];
    return {
      isMe: this.#isMe,
      find: (seq) => findPost(posts, seq),
      editing: this.#editing,
      confirming: this.#confirming,
    };
  }

  #draw(): void {
    const view = this.#view as RoomView;
    const ctx = this.#context();
    const rows = buildRows(view.posts, this.#notes, {
      unreadAfter: this.#unreadAfter,
      isOwn: (p) => this.#isMe(p.nick),
    });
    // Keep what has focus and what an open editor holds across rebuilt rows.
    const active = document.activeElement as HTMLElement | null;
    const activeRow = active?.closest?.<HTMLElement>("#chat > li");
    const activeAct = active?.dataset.act;
    const activeEmoji = active?.dataset.emoji;
    const editor = this.#parts.list.querySelector<HTMLTextAreaElement>("textarea[data-editor]");
    const draft = editor
      ? { seq: editor.dataset.editor, value: editor.value, at: editor.selectionStart }
      : undefined;

    const next = new Map<string, Rendered>();
    const els: HTMLLIElement[] = [];
    for (const row of rows) {
      const sig = rowSignature(row, ctx);
      const old = this.#rendered.get(row.key);
      const el = old && old.sig === sig ? old.el : rowElement(row, ctx);
      next.set(row.key, { el, sig });
      els.push(el);
    }
    for (const [key, { el }] of this.#rendered) if (next.get(key)?.el !== el) el.remove();
    const { list } = this.#parts;
    let cursor = list.firstElementChild;
    for (const el of els) {
      if (el === cursor) cursor = cursor.nextElementSibling;
      else list.insertBefore(el, cursor);
    }
    this.#rendered = next;

    const newEditor = list.querySelector<HTMLTextAreaElement>("textarea[data-editor]");
    if (newEditor && newEditor !== editor) {
      if (draft && draft.seq === newEditor.dataset.editor) {
        newEditor.value = draft.value;
        newEditor.setSelectionRange(draft.at, draft.at);
      }
      newEditor.focus();
    } else if (activeRow && !activeRow.isConnected) {
      const key = activeRow.dataset.seq;
      const row = key ? list.querySelector<HTMLElement>(`li[data-seq="${key}"]`) : null;
      const same = activeAct
        ? [...(row?.querySelectorAll<HTMLElement>(`[data-act="${activeAct}"]`) ?? [])].find(
            (b) => b.dataset.emoji === activeEmoji,
          )
        : undefined;
      (same ?? row)?.focus({ preventScroll: true });
    }
    this.#drawPending(view);
    const { older, start } = this.#parts;
    older.hidden = !view.hasOlder;
    older.textContent = this.#loading ? "Loading older messages…" : "Load older messages";
    start.hidden = view.hasOlder;
    if (!view.hasOlder) {
      start.replaceChildren(
        h("strong", {}, view.dm !== undefined ? view.dm : `#${view.room}`),
        view.dm !== undefined
          ? `This is the beginning of your conversation with ${view.dm}.`
          : `This is the beginning of #${view.room}.`,
      );
    }
  }

  #drawPending(view: RoomView): void {
    const last = view.posts.at(-1);
    let head = !(last && this.#isMe(last.nick) && Date.now() - Date.parse(last.sentAt) < GROUP_MS);
    const me = this.#me();
    this.#parts.outbox.replaceChildren(
      ...view.pending.map((p) => {
        const el = pendingElement(p, me, head);
        head = false;
        return el;
      }),
    );
  }

  atBottom(): boolean {
    const { scroller } = this.#parts;
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight <= BOTTOM_SLACK;
  }

  toBottom(): void {
    const { scroller } = this.#parts;
    scroller.scrollTop = scroller.scrollHeight;
    this.#stuck = true;
    this.#newestSeen = this.#view?.posts.at(-1)?.seq ?? 0;
    this.#parts.jump.hidden = true;
  }

  #showJump(): void {
    const { jump } = this.#parts;
    if (this.atBottom()) {
      this.#newestSeen = this.#view?.posts.at(-1)?.seq ?? 0;
      jump.hidden = true;
      return;
    }
    const fresh = (this.#view?.posts ?? []).filter(
      (p) => p.seq > this.#newestSeen && !this.#isMe(p.nick),
    ).length;
    jump.hidden = false;
    jump.replaceChildren(
      icon("down"),
      fresh > 0 ? `${fresh} new message${fresh === 1 ? "" : "s"}` : "Jump to newest",
    );
  }

  #scrolled(): void {
    this.#stuck = this.atBottom();
    if (this.#stuck) this.#hooks.readable();
    this.#showJump();
    if (this.#parts.scroller.scrollTop <= TOP_SLACK) this.#requestOlder();
  }

  #requestOlder(): void {
    const view = this.#view;
    if (!view?.hasOlder || this.#loading || !this.#room) return;
    this.#loading = true;
    this.#parts.older.textContent = "Loading older messages…";
    const room = this.#room;
    this.#hooks
      .loadOlder(room)
      .catch(() => undefined)
      .finally(() => {
        if (this.#room !== room) return;
        this.#loading = false;
        this.#parts.older.textContent = "Load older messages";
        this.#fill();
      });
  }

  /** Too few posts to scroll cannot trigger the scroll-up load: keep loading until the pane fills. */
  #fill(): void {
    const { scroller } = this.#parts;
    if (scroller.scrollHeight <= scroller.clientHeight + TOP_SLACK)
      queueMicrotask(() => this.#requestOlder());
  }

  /** Scrolls to a post and flashes it; loads older posts first when it is not held yet. */
  async jumpTo(seq: number): Promise<void> {
    const room = this.#room;
    for (let tries = 0; tries < 20 && room === this.#room; tries++) {
      const row = this.#parts.list.querySelector<HTMLElement>(`li[data-seq="${seq}"]`);
      if (row) {
        row.scrollIntoView({ block: "center" });
        row.classList.remove("flash");
        void row.offsetWidth; // restart the animation
        row.classList.add("flash");
        row.focus({ preventScroll: true });
        setTimeout(() => row.classList.remove("flash"), 1700);
        return;
      }
      if (!this.#view?.hasOlder || !room) return;
      await this.#hooks.loadOlder(room);
    }
  }

  /** Opens the in-place editor on one of the reader's posts. */
  startEdit(seq: number): void {
    this.#confirming = undefined;
    this.#editing = seq;
    this.#menu.detach();
    this.redraw();
    this.#parts.list.querySelector(`li[data-seq="${seq}"]`)?.scrollIntoView({ block: "nearest" });
  }

  /** The newest post of the reader's own that can still be edited. */
  lastOwnPost(): ClientPost | undefined {
    const posts = this.#view?.posts ?? [];
    for (let i = posts.length - 1; i >= 0; i--) {
      const p = posts[i] as ClientPost;
      if (this.#isMe(p.nick) && !p.deleted) return p;
    }
    return undefined;
  }

  #stopEdit(): void {
    this.#editing = undefined;
    this.redraw();
    this.#hooks.editorClosed();
  }

  #clicked(e: MouseEvent): void {
    const button = (e.target as HTMLElement).closest<HTMLElement>("[data-act]");
    if (!button) return;
    const row = button.closest<HTMLElement>("li");
    const seq = Number(row?.dataset.seq);
    const post = this.#view ? findPost(this.#view.posts, seq) : undefined;
    switch (button.dataset.act) {
      case "reply":
        this.#menu.detach();
        this.#hooks.reply(seq);
        break;
      case "react":
        if (row) this.#menu.openPicker(row);
        break;
      case "pick":
      case "reaction": {
        const emoji = button.dataset.emoji as string;
        const mine = post?.reactions?.find((r) => r.emoji === emoji)?.nicks.some(this.#isMe) ?? false;
        this.#menu.closePicker();
        this.#hooks.react(seq, emoji, !mine);
        if (button.dataset.act === "pick") row?.focus({ preventScroll: true });
        break;
      }
      case "edit":
        this.startEdit(seq);
        break;
      case "delete":
        this.#menu.detach();
        this.#editing = undefined;
        this.#confirming = seq;
        this.redraw();
        this.#parts.list.querySelector<HTMLElement>(`li[data-seq="${seq}"] [data-act="delete-yes"]`)?.focus();
        break;
      case "delete-yes":
        this.#confirming = undefined;
        this.#hooks.remove(seq);
        this.redraw();
        this.#hooks.editorClosed();
        break;
      case "delete-no":
        this.#confirming = undefined;
        this.redraw();
        this.#parts.list.querySelector<HTMLElement>(`li[data-seq="${seq}"]`)?.focus();
        break;
      case "quote":
        void this.jumpTo(Number(button.dataset.to));
        break;
      case "retry":
        this.#hooks.retry(button.dataset.id as string);
        break;
      case "discard":
        this.#hooks.discard(button.dataset.id as string);
        break;
    }
  }

  #keys(e: KeyboardEvent): void {
    const target = e.target as HTMLElement;
    if (target.matches("textarea[data-editor]")) {
      const seq = Number(target.dataset.editor);
      if (e.key === "Escape") {
        e.preventDefault();
        this.#stopEdit();
      } else if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        const text = (target as HTMLTextAreaElement).value;
        const post = this.#view ? findPost(this.#view.posts, seq) : undefined;
        if (text.trim() === "") {
          this.#editing = undefined;
          this.#confirming = seq;
          this.redraw();
          this.#parts.list
            .querySelector<HTMLElement>(`li[data-seq="${seq}"] [data-act="delete-yes"]`)
            ?.focus();
          return;
        }
        if (post && text !== post.text) this.#hooks.edit(seq, text);
        this.#stopEdit();
      }
      return;
    }
    const rows = () => [...this.#parts.list.querySelectorAll<HTMLElement>("li.msg[data-seq]")];
    if (e.key === "ArrowUp" || e.key === "ArrowDown") {
      if (target !== this.#parts.scroller && !target.matches("li.msg")) return;
      e.preventDefault();
      const all = rows();
      const at = all.indexOf(target);
      const next =
        at < 0 ? all.at(-1) : all[Math.max(0, Math.min(all.length - 1, at + (e.key === "ArrowUp" ? -1 : 1)))];
      next?.focus();
      next?.scrollIntoView({ block: "nearest" });
    } else if (target.matches("li.msg[data-seq]") && !e.ctrlKey && !e.metaKey && !e.altKey) {
      const seq = Number(target.dataset.seq);
      const own = this.#isMe(target.dataset.nick ?? "");
      if (e.key === "r") this.#hooks.reply(seq);
      else if (e.key === "e" && own) this.startEdit(seq);
      else if (e.key === "+" || e.key === "=") this.#menu.openPicker(target);
      else if ((e.key === "Delete" || e.key === "Backspace") && own) {
        this.#confirming = seq;
        this.redraw();
        this.#parts.list.querySelector<HTMLElement>(`li[data-seq="${seq}"] [data-act="delete-yes"]`)?.focus();
      } else if (e.key === "Escape") this.#hooks.editorClosed();
      else return;
      e.preventDefault();
    }
  }
}

/** Binary search of a post by seq in ascending posts. */
export function findPost(posts: readonly ClientPost[], seq: number): ClientPost | undefined {
  let lo = 0;
  let hi = posts.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const p = posts[mid] as ClientPost;
    if (p.seq === seq) return p;
    if (p.seq < seq) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}
