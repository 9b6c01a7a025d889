/** #userlist: one li per person online in the room (the text of each is the nick alone), with a button to write to them. */
import { h, iconButton } from "./dom";
import { nickClass } from "./palette";

export class MembersView {
  #shown = "";

  readonly #list: HTMLUListElement;
  readonly #heading: HTMLElement;
  readonly #dm: (nick: string) => void;

  constructor(list: HTMLUListElement, heading: HTMLElement, dm: (nick: string) => void) {
    this.#list = list;
    this.#heading = heading;
    this.#dm = dm;
  }

  render(users: readonly string[], isMe: (nick: string) => boolean): void {
    const key = users.map((n) => `${n}${isMe(n) ? "*" : ""}`).join("\n");
    if (key === this.#shown) return;
    this.#shown = key;
    this.#heading.textContent = `Members · ${users.length}`;
    this.#list.replaceChildren(
      ...users.map((nick) => {
        const me = isMe(nick);
        return h(
          "li",
          { class: me ? "member me" : "member" },
          h("span", { class: "dot", attrs: { "aria-hidden": "true" } }),
          h("span", { class: `name ${nickClass(nick)}` }, nick),
          me ? null : iconButton("chat", `Message ${nick} privately`, () => this.#dm(nick)),
        );
      }),
    );
  }
}
