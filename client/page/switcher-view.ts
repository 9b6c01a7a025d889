/**
 * The quick switcher (Ctrl+K): a dialog listing the reader's rooms and conversations, filtered as
 * they type, unread first; Up/Down pick, Enter goes (or joins the room typed when it is not one of
 * theirs), Esc closes.
 */
import { checkRoom } from "./commands";
import { byId, h } from "./dom";

export interface SwitcherItem {
  room: string;
  label: string;
  hint: string;
  unread: number;
}

export class SwitcherView {
  readonly #dialog = byId<HTMLDialogElement>("switcher");
  readonly #input = byId<HTMLInputElement>("switcher-input");
  readonly #list = byId("switcher-list");
  #items: SwitcherItem[] = [];
  #shown: Array<{ room?: string; join?: string }> = [];
  #selected = 0;

  readonly #source: () => SwitcherItem[];
  readonly #go: (room: string) => void;
  readonly #join: (room: string) => void;

  constructor(source: () => SwitcherItem[], go: (room: string) => void, join: (room: string) => void) {
    this.#source = source;
    this.#go = go;
    this.#join = join;
    this.#input.addEventListener("input", () => {
      this.#selected = 0;
      this.#draw();
    });
    this.#input.addEventListener("keydown", (e) => {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        const n = this.#shown.length;
        if (n > 0) this.#selected = (this.#selected + (e.key === "ArrowDown" ? 1 : n - 1)) % n;
        this.#draw();
      } else if (e.key === "Enter") {
        e.preventDefault();
        this.#choose(this.#selected);
      }
    });
    this.#dialog.addEventListener("click", (e) => {
      if (e.target === this.#dialog) this.#dialog.close();
    });
  }

  open(): void {
    this.#items = this.#source();
    this.#input.value = "";
    this.#selected = 0;
    this.#draw();
    if (!this.#dialog.open) this.#dialog.showModal();
    this.#input.focus();
  }

  #choose(i: number): void {
    const pick = this.#shown[i];
    if (!pick) return;
    this.#dialog.close();
    if (pick.room !== undefined) this.#go(pick.room);
    else if (pick.join !== undefined) this.#join(pick.join);
  }

  #draw(): void {
    const q = this.#input.value.trim().replace(/^[#@]/, "").toLowerCase();
    const matches = this.#items
      .filter((it) => it.label.toLowerCase().replace(/^#/, "").includes(q))
      .sort((a, b) => Number(b.unread > 0) - Number(a.unread > 0));
    this.#shown = matches.map((m) => ({ room: m.room }));
    const rows = matches.map((m) => [m.label, m.hint]);
    const typed = q === "" ? undefined : checkRoom(q);
    if (typed && "room" in typed && !this.#items.some((it) => it.room === typed.room)) {
      this.#shown.push({ join: typed.room });
      rows.push([`Join #${typed.room}`, "new room"]);
    }
    this.#selected = Math.min(this.#selected, Math.max(0, this.#shown.length - 1));
    this.#list.replaceChildren(
      ...rows.map(([label, hint], i) => {
        const li = h(
          "div",
          {
            attrs: { role: "option", id: `switch-${i}`, "aria-selected": String(i === this.#selected) },
            onclick: () => this.#choose(i),
          },
          h("span", { class: "name" }, label ?? ""),
          h("span", { class: "hint" }, hint ?? ""),
        );
        return li;
      }),
    );
    if (rows.length === 0) this.#list.append(h("p", { class: "hint" }, "Nothing matches"));
    this.#input.setAttribute(
      "aria-activedescendant",
      this.#shown.length > 0 ? `switch-${this.#selected}` : "",
    );
    this.#list.querySelector('[aria-selected="true"]')?.scrollIntoView({ block: "nearest" });
  }
}
