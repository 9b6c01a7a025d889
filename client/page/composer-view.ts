/**
 * The composer (#inputline, a text area): Enter sends, Shift+Enter breaks the line, pastes stay as
 * they are; it grows to about six lines; a counter shows up near the length limit and over it the
 * message cannot be sent; Tab completes nicks; Up in an empty composer edits the reader's last post;
 * Esc drops a reply. Each room keeps its own draft. The line above it tells who is typing, or what
 * just went wrong.
 */
import { LIMITS } from "../../protocol/limits";
import { charCount } from "../../protocol/names";
import { type CompletionState, completeNick } from "./completion";
import { byId } from "./dom";
import { plainExcerpt } from "./markdown";

/** The counter shows from this many characters on. */
const COUNTER_FROM = LIMITS.textMax - 500;
const PROBLEM_MS = 7000;

export interface ComposerHooks {
  /** Runs what was typed; false keeps it in the box (a command that could not run). */
  submit(text: string, replyTo: number | undefined): boolean;
  typing(): void;
  /** Up in an empty box: edit the last own post; false when there is none. */
  editLast(): boolean;
  /** Nicks to complete, best first. */
  nicks(): string[];
}

export interface ReplyTarget {
  seq: number;
  nick: string;
  text: string;
}

export class ComposerView {
  readonly input = byId<HTMLTextAreaElement>("inputline");
  readonly #form = byId<HTMLFormElement>("composer");
  readonly #box = byId("compose-box");
  readonly #counter = byId("counter");
  readonly #send = byId<HTMLButtonElement>("send");
  readonly #status = byId("typing");
  readonly #replyBar = byId("reply-bar");
  readonly #replyText = byId("reply-text");
  readonly #drafts = new Map<string, string>();
  readonly #replies = new Map<string, ReplyTarget>();
  #room: string | undefined;
  #completion: CompletionState | undefined;
  #typers: readonly string[] = [];
  #problem: string | undefined;
  #problemTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly hooks: ComposerHooks) {
    const { input } = this;
    this.#form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.#submit();
    });
    input.addEventListener("input", () => {
      this.#completion = undefined;
      this.#changed();
      if (input.value !== "" && !input.value.startsWith("/")) hooks.typing();
    });
    input.addEventListener("keydown", (e) => this.#keys(e));
    byId("reply-cancel").addEventListener("click", () => {
      this.setReply(undefined);
      input.focus();
    });
    this.#changed();
  }

  /** Moves to another room's draft and reply. */
  switchRoom(room: string | undefined, placeholder: string): void {
    if (this.#room !== undefined) this.#drafts.set(this.#room, this.input.value);
    this.#room = room;
    this.input.value = room === undefined ? "" : (this.#drafts.get(room) ?? "");
    this.input.placeholder = placeholder;
    this.input.disabled = room === undefined;
    this.#completion = undefined;
    this.#showReply();
    this.#changed();
  }

  setReply(target: ReplyTarget | undefined): void {
    if (this.#room === undefined) return;
    if (target) this.#replies.set(this.#room, target);
    else this.#replies.delete(this.#room);
    this.#showReply();
  }

  #showReply(): void {
    const target = this.#room === undefined ? undefined : this.#replies.get(this.#room);
    this.#replyBar.hidden = !target;
    if (target) {
      this.#replyText.replaceChildren(
        "Replying to ",
        nickNode(target.nick),
        ` · ${plainExcerpt(target.text, 80)}`,
      );
    }
  }

  /** Who is typing in the room shown. */
  setTyping(nicks: readonly string[]): void {
    this.#typers = nicks;
    this.#showStatus();
  }

  /** Says what went wrong, above the box, for a few seconds. */
  showProblem(message: string): void {
    this.#problem = message;
    clearTimeout(this.#problemTimer);
    this.#problemTimer = setTimeout(() => {
      this.#problem = undefined;
      this.#showStatus();
    }, PROBLEM_MS);
    this.#showStatus();
  }

  focus(): void {
    // The box is always in view: no scrolling, so no layout forced for it.
    this.input.focus({ preventScroll: true });
  }

  #showStatus(): void {
    const status = this.#status;
    status.classList.toggle("problem", this.#problem !== undefined);
    if (this.#problem !== undefined) {
      status.textContent = this.#problem;
      status.setAttribute("role", "alert");
      return;
    }
    status.removeAttribute("role");
    const t = this.#typers;
    status.textContent =
      t.length === 0
        ? ""
        : t.length === 1
          ? `${t[0]} is typing…`
          : t.length === 2
            ? `${t[0]} and ${t[1]} are typing…`
            : "Several people are typing…";
  }

  #submit(): void {
    const text = this.input.value;
    const over = charCount(text) - LIMITS.textMax;
    if (over > 0) {
      this.showProblem(
        `That is ${over.toLocaleString()} character${over === 1 ? "" : "s"} too long to send.`,
      );
      return;
    }
    const reply = this.#room === undefined ? undefined : this.#replies.get(this.#room);
    if (!this.hooks.submit(text, reply?.seq)) return;
    this.input.value = "";
    if (this.#room !== undefined) this.#drafts.delete(this.#room);
    if (reply && !text.startsWith("/")) this.setReply(undefined);
    this.#problem = undefined;
    this.#showStatus();
    this.#changed();
  }

  #keys(e: KeyboardEvent): void {
    const { input } = this;
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && !e.altKey) {
      e.preventDefault();
      this.#submit();
    } else if (e.key === "Tab" && !e.shiftKey && !e.ctrlKey && !e.altKey) {
      const done = completeNick(input.value, input.selectionStart, this.hooks.nicks(), this.#completion);
      if (!done) return;
      e.preventDefault();
      input.value = done.value;
      input.setSelectionRange(done.caret, done.caret);
      this.#completion = done.state;
      this.#changed();
    } else if (e.key === "ArrowUp" && input.value === "" && !e.altKey) {
      if (this.hooks.editLast()) e.preventDefault();
    } else if (e.key === "Escape" && this.#room !== undefined && this.#replies.has(this.#room)) {
      e.preventDefault();
      this.setReply(undefined);
    }
  }

  /** Height, counter and the send button follow the text. */
  #changed(): void {
    const { input } = this;
    // An empty box is one line (rows=1): no need to measure it (measuring forces a layout).
    input.style.height = "auto";
    if (input.value !== "") input.style.height = `${input.scrollHeight}px`;
    const n = input.value.length >= COUNTER_FROM / 2 ? charCount(input.value) : 0;
    const over = n > LIMITS.textMax;
    this.#counter.hidden = n < COUNTER_FROM;
    this.#counter.textContent = over
      ? `${(n - LIMITS.textMax).toLocaleString()} over`
      : `${(LIMITS.textMax - n).toLocaleString()} left`;
    this.#counter.classList.toggle("over", over);
    this.#counter.setAttribute(
      "aria-label",
      over ? `${n - LIMITS.textMax} characters too long` : `${LIMITS.textMax - n} characters left`,
    );
    this.#box.classList.toggle("over", over);
    this.#box.classList.toggle("ready", input.value.trim() !== "" && !over);
    this.#send.disabled = over || input.value.trim() === "";
  }
}

function nickNode(nick: string): HTMLElement {
  const b = document.createElement("b");
  b.textContent = nick;
  return b;
}
