/**
 * The frame around the room: the members column (shown or hidden, remembered) on wide screens, the
 * members sliding in over the room below 1000 px, and on phones the room list too; what slides in
 * is closed by the scrim, Esc or a choice.
 */
import { byId, store } from "./dom";

const PHONE = "(max-width: 600px)";
/** page.css's width below which the members slide in rather than take a column. */
const NARROW = "(max-width: 1000px)";

export class Layout {
  readonly #app = byId("app");
  readonly #menu = byId<HTMLButtonElement>("menu");
  readonly #toggle = byId<HTMLButtonElement>("members-toggle");
  readonly #phone = window.matchMedia(PHONE);
  readonly #narrow = window.matchMedia(NARROW);
  #membersShown = store.get("members") !== "hidden";

  constructor() {
    this.#menu.addEventListener("click", () => this.showRooms(!this.#app.classList.contains("show-rooms")));
    this.#toggle.addEventListener("click", () => {
      if (this.#narrow.matches) {
        this.#app.classList.toggle("show-members");
        this.#app.classList.remove("show-rooms");
      } else {
        this.#membersShown = !this.#membersShown;
        store.set("members", this.#membersShown ? undefined : "hidden");
      }
      this.#sync();
    });
    byId("scrim").addEventListener("click", () => this.closeOverlays());
    for (const query of [this.#phone, this.#narrow]) {
      query.addEventListener("change", () => {
        this.closeOverlays();
        this.#sync();
      });
    }
    this.#sync();
  }

  showRooms(open: boolean): void {
    this.#app.classList.toggle("show-rooms", open);
    this.#app.classList.remove("show-members");
    this.#sync();
    if (open) byId("sidebar").querySelector<HTMLElement>(".room.active .go, .go, button")?.focus();
  }

  /** Closes what slides over the chat on a phone; true when something was open. */
  closeOverlays(): boolean {
    const open = this.#app.classList.contains("show-rooms") || this.#app.classList.contains("show-members");
    this.#app.classList.remove("show-rooms", "show-members");
    this.#sync();
    return open;
  }

  #sync(): void {
    const phone = this.#phone.matches;
    const narrow = this.#narrow.matches;
    const rooms = this.#app.classList.contains("show-rooms");
    const members = narrow ? this.#app.classList.contains("show-members") : this.#membersShown;
    this.#app.classList.toggle("no-members", !narrow && !this.#membersShown);
    this.#menu.setAttribute("aria-expanded", String(rooms));
    this.#toggle.setAttribute("aria-expanded", String(members));
    const label = members ? "Hide members" : "Show members";
    this.#toggle.setAttribute("aria-label", label);
    this.#toggle.title = label;
    // Off-screen panels leave the tab order on phones.
    byId("sidebar").inert = phone && !rooms;
    byId("members").inert = narrow && !members;
  }
}
