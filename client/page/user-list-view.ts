/** #userlist: one li per person online, the reader marked, with the count beside the heading. */
import { nickKey } from "../../protocol";
import { h } from "./dom";
import { paintNick } from "./nick-colour";

export class UserListView {
  constructor(
    private readonly list: HTMLUListElement,
    private readonly count: HTMLElement,
  ) {}

  /** Each li holds exactly the nickname as text; "you" is drawn by page.css. */
  render(users: readonly string[], me: string | undefined): void {
    const myKey = me === undefined ? undefined : nickKey(me);
    this.list.replaceChildren(
      ...users.map((nick) => {
        const li = h("li", nickKey(nick) === myKey ? { class: "me" } : {}, nick);
        return paintNick(li, nick);
      }),
    );
    this.count.textContent = String(users.length);
  }
}
