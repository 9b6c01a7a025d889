/**
 * The frame around the room: the members column (shown or hidden, remembered), and on phones the
 * room list and the members sliding in over the chat, closed by the scrim, Esc or a choice.
 */
import { byId, store } from "./dom";

const PHONE = "(max-width: 600px)";

export class Layout {
  private readonly app = byId("app");
  private readonly menu = byId<HTMLButtonElement>("menu");
  private readonly toggle = byId<HTMLButtonElement>("members-toggle");
  private readonly phone = window.matchMedia(PHONE);
  private membersShown = store.get("members") !== "hidden";

  constructor() {
    this.menu.addEventListener("click", () => this.showRooms(!this.app.classList.contains("show-rooms")));
    this.toggle.addEventListener("click", () => {
      if (this.phone.matches) {
        this.app.classList.toggle("show-members");
        this.app.classList.remove("show-rooms");
      } else {
        this.membersShown = !this.membersShown;
        store.set("members", this.membersShown ? undefined : "hidden");
      }
      this.sync();
    });
    byId("scrim").addEventListener("click", () => this.closeOverlays());
    this.phone.addEventListener("change", () => {
      this.closeOverlays();
      this.sync();
    });
    this.sync();
  }

  showRooms(open: boolean): void {
    this.app.classList.toggle("show-rooms", open);
    this.app.classList.remove("show-members");
    this.sync();
    if (open) byId("sidebar").querySelector<HTMLElement>(".room.active .go, .go, button")?.focus();
  }

  /** Closes what slides over the chat on a phone; true when something was open. */
  closeOverlays(): boolean {
    const open = this.app.classList.contains("show-rooms") || this.app.classList.contains("show-members");
    this.app.classList.remove("show-rooms", "show-members");
    this.sync();
    return open;
  }

  get isPhone(): boolean {
    return this.phone.matches;
  }

  private sync(): void {
    const phone = this.phone.matches;
    const rooms = this.app.classList.contains("show-rooms");
    const members = phone ? this.app.classList.contains("show-members") : this.membersShown;
    this.app.classList.toggle("no-members", !phone && !this.membersShown);
    this.menu.setAttribute("aria-expanded", String(rooms));
    this.toggle.setAttribute("aria-pressed", String(members));
    this.toggle.setAttribute("aria-expanded", String(members));
    const label = members ? "Hide members" : "Show members";
    this.toggle.setAttribute("aria-label", label);
    this.toggle.title = label;
    // Off-screen panels leave the tab order on phones.
    byId("sidebar").inert = phone && !rooms;
    byId("members").inert = phone && !members;
  }
}
