/**
 * The room list: rooms, then direct messages under their own heading, each with its unread or
 * mention pill (mentions in their own colour), a × to leave, and + forms to join a room or write to
 * someone. The order shown is the order Alt+Up/Down walks.
 */
import type { RoomView } from "../v2/api";
import { pillOf, shortCount } from "./attention";
import { checkNick, checkRoom } from "./commands";
import { byId, h, iconButton } from "./dom";
import { nickClass } from "./palette";

export interface SidebarHooks {
  open(room: string): void;
  part(room: string): void;
  join(room: string): void;
  dm(nick: string): void;
}

export interface SidebarEntry {
  room: string;
  view: RoomView | undefined;
}

/** The name a room goes by in lists and headers: `#lobby`, or the other person's nick. */
export function roomLabel(room: string, view: RoomView | undefined): string {
  return view?.dm !== undefined ? view.dm : `#${room}`;
}

export class SidebarView {
  #order: string[] = [];

  readonly #rooms: HTMLUListElement;
  readonly #dms: HTMLUListElement;
  readonly #hooks: SidebarHooks;

  constructor(rooms: HTMLUListElement, dms: HTMLUListElement, hooks: SidebarHooks) {
    this.#rooms = rooms;
    this.#dms = dms;
    this.#hooks = hooks;
    inlineForm("join", (value) => {
      const checked = checkRoom(value);
      if ("problem" in checked) return checked.problem;
      hooks.join(checked.room);
      return undefined;
    });
    inlineForm("dm", (value) => {
      const checked = checkNick(value);
      if ("problem" in checked) return checked.problem;
      hooks.dm(checked.nick);
      return undefined;
    });
  }

  /** Rooms in the order shown. */
  shown(): string[] {
    return this.#order;
  }

  render(entries: SidebarEntry[], active: string | undefined, connected: boolean): void {
    const focused = document.activeElement as HTMLElement | null;
    const focusRoom = focused?.closest<HTMLElement>("li[data-room]")?.dataset.room;
    const focusPart = focused?.classList.contains("part") ?? false;
    const byName = (a: SidebarEntry, b: SidebarEntry) =>
      roomLabel(a.room, a.view).localeCompare(roomLabel(b.room, b.view), undefined, { sensitivity: "base" });
    const rooms = entries.filter((e) => e.view?.dm === undefined).sort(byName);
    const dms = entries.filter((e) => e.view?.dm !== undefined).sort(byName);
    this.#order = [...rooms, ...dms].map((e) => e.room);
    this.#rooms.replaceChildren(...rooms.map((e) => this.#item(e, active)));
    this.#dms.replaceChildren(...dms.map((e) => this.#item(e, active)));
    if (rooms.length === 0 && connected)
      this.#rooms.append(h("li", { class: "empty-hint" }, "No rooms yet: join one with +"));
    if (focusRoom !== undefined && focused && !focused.isConnected) {
      const li = [...this.#rooms.children, ...this.#dms.children].find(
        (el) => (el as HTMLElement).dataset.room === focusRoom,
      );
      li?.querySelector<HTMLElement>(focusPart ? ".part" : ".go")?.focus();
    }
  }

  #item({ room, view }: SidebarEntry, active: string | undefined): HTMLLIElement {
    const label = roomLabel(room, view);
    const pill = view ? pillOf(view) : undefined;
    const isActive = room === active;
    const words = [label];
    if (view?.dm !== undefined) words.push("direct messages");
    if (pill)
      words.push(
        `${pill.count} ${pill.mention ? (view?.dm !== undefined ? "unread" : "mentioning you") : "unread"}`,
      );
    const sigil =
      view?.dm !== undefined
        ? h("span", { class: `sigil ${nickClass(view.dm)}`, attrs: { "aria-hidden": "true" } }, "●")
        : h("span", { class: "sigil", attrs: { "aria-hidden": "true" } }, "#");
    const go = h(
      "button",
      {
        class: "go",
        attrs: {
          type: "button",
          "aria-label": words.join(", "),
          "aria-current": isActive ? "page" : undefined,
        },
        onclick: () => this.#hooks.open(room),
      },
      sigil,
      h("span", { class: "name" }, view?.dm ?? room),
      pill
        ? h("span", { class: `pill ${pill.mention ? "mention" : "unread"}` }, shortCount(pill.count))
        : null,
    );
    const part = iconButton(
      "x",
      view?.dm !== undefined ? `Close the conversation with ${view.dm}` : `Leave ${label}`,
      () => this.#hooks.part(room),
      "icon part",
    );
    const classes = ["room"];
    if (isActive) classes.push("active");
    if (pill) classes.push("unread");
    return h("li", { class: classes.join(" "), attrs: { "data-room": room } }, go, part);
  }
}

/** A + button that opens a one-field form under its heading; Enter submits, Esc closes. */
function inlineForm(name: string, submit: (value: string) => string | undefined): void {
  const open = byId<HTMLButtonElement>(`${name}-open`);
  const form = byId<HTMLFormElement>(`${name}-form`);
  const input = byId<HTMLInputElement>(`${name}-input`);
  const problem = byId(`${name}-problem`);
  const close = (focus: boolean) => {
    form.hidden = true;
    problem.textContent = "";
    input.value = "";
    open.setAttribute("aria-expanded", "false");
    if (focus) open.focus();
  };
  open.addEventListener("click", () => {
    if (!form.hidden) return close(false);
    form.hidden = false;
    open.setAttribute("aria-expanded", "true");
    input.focus();
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const trouble = submit(input.value);
    if (trouble) problem.textContent = trouble;
    else close(false);
  });
  input.addEventListener("input", () => {
    problem.textContent = "";
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      close(true);
    }
  });
}
