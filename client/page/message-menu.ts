/**
 * The small menu on the post under the pointer or the keyboard focus: react, reply, and for the
 * reader's own posts edit and delete. One menu moves from row to row (so the tab order does not
 * hold four buttons per post); the reaction picker opens under it with a few common emoji.
 */
import { h, type IconName, icon } from "./dom";

export const COMMON_EMOJI = ["👍", "❤️", "😂", "🎉", "😮", "😢", "🙏", "👀", "✅", "🔥"];

const EMOJI_NAMES: Record<string, string> = {
  "👍": "thumbs up",
  "❤️": "heart",
  "😂": "laughing",
  "🎉": "party",
  "😮": "surprised",
  "😢": "sad",
  "🙏": "thanks",
  "👀": "looking",
  "✅": "done",
  "🔥": "fire",
};

function menuButton(name: IconName, act: string, label: string): HTMLButtonElement {
  return h(
    "button",
    { class: "icon", attrs: { type: "button", "data-act": act, "aria-label": label, title: label } },
    icon(name),
  );
}

export class MessageMenu {
  readonly #menu: HTMLElement;
  readonly #ownButtons: HTMLButtonElement[];
  #picker: HTMLElement | undefined;
  #row: HTMLElement | undefined;

  readonly #scroller: HTMLElement;
  readonly #isOwnRow: (row: HTMLElement) => boolean;

  constructor(
    scroller: HTMLElement,
    /** True when the row is the reader's own post. */
    isOwnRow: (row: HTMLElement) => boolean,
  ) {
    this.#scroller = scroller;
    this.#isOwnRow = isOwnRow;
    this.#ownButtons = [menuButton("edit", "edit", "Edit"), menuButton("trash", "delete", "Delete")];
    this.#menu = h(
      "div",
      { class: "menu", attrs: { role: "toolbar", "aria-label": "Message actions" } },
      menuButton("smile", "react", "Add a reaction"),
      menuButton("reply", "reply", "Reply"),
      ...this.#ownButtons,
    );
    scroller.addEventListener("mouseover", (e) => this.#follow(e.target));
    scroller.addEventListener("focusin", (e) => this.#follow(e.target));
    scroller.addEventListener("mouseleave", () => {
      if (!this.#row?.contains(document.activeElement) && !this.#picker) this.detach();
    });
  }

  #follow(target: EventTarget | null): void {
    const row = (target as HTMLElement | null)?.closest?.<HTMLElement>("li.msg[data-seq]");
    if (!row || row === this.#row || this.#picker) return;
    if (row.classList.contains("deleted") || row.querySelector(".editor, .confirm")) {
      this.detach();
      return;
    }
    this.#row = row;
    const own = this.#isOwnRow(row);
    for (const b of this.#ownButtons) b.hidden = !own;
    row.append(this.#menu);
  }

  detach(): void {
    this.closePicker();
    this.#menu.remove();
    this.#row = undefined;
  }

  /** Opens the emoji picker on a row and focuses its first emoji. */
  openPicker(row: HTMLElement): void {
    this.closePicker();
    const picker = h(
      "div",
      { class: "picker", attrs: { role: "group", "aria-label": "Pick a reaction" } },
      ...COMMON_EMOJI.map((emoji) =>
        h(
          "button",
          {
            attrs: {
              type: "button",
              "data-act": "pick",
              "data-emoji": emoji,
              "aria-label": `React with ${EMOJI_NAMES[emoji] ?? emoji}`,
              title: EMOJI_NAMES[emoji],
            },
          },
          emoji,
        ),
      ),
    );
    picker.addEventListener("keydown", (e) => this.#pickerKeys(e, row));
    picker.addEventListener("focusout", (e) => {
      if (!picker.contains(e.relatedTarget as Node | null)) queueMicrotask(() => this.closePicker());
    });
    this.#picker = picker;
    row.classList.add("menu-open");
    row.append(picker);
    picker.querySelector("button")?.focus();
  }

  closePicker(): void {
    this.#picker?.parentElement?.classList.remove("menu-open");
    this.#picker?.remove();
    this.#picker = undefined;
  }

  #pickerKeys(e: KeyboardEvent, row: HTMLElement): void {
    const buttons = [...(this.#picker?.querySelectorAll("button") ?? [])];
    const at = buttons.indexOf(document.activeElement as HTMLButtonElement);
    const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: 5, ArrowUp: -5 }[e.key];
    if (step !== undefined) {
      e.preventDefault();
      buttons[(at + step + buttons.length) % buttons.length]?.focus();
    } else if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      this.closePicker();
      row.focus();
    }
  }
}
