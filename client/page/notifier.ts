/**
 * Desktop notifications, opt-in: the bell in the header asks the browser's permission, and while
 * it is on, a mention or a direct message that arrives while the tab is hidden shows a notification
 * (clicking it brings the tab and the room back).
 */
import { byId, setIcon, store } from "./dom";

export class Notifier {
  readonly #bell = byId<HTMLButtonElement>("bell");
  #on = store.get("notify") === "on";

  readonly #say: (message: string) => void;
  readonly #open: (room: string) => void;

  constructor(say: (message: string) => void, open: (room: string) => void) {
    this.#say = say;
    this.#open = open;
    if (!("Notification" in window)) {
      this.#bell.hidden = true;
      return;
    }
    if (Notification.permission !== "granted") this.#on = false;
    this.#bell.addEventListener("click", () => void this.#toggle());
    this.#show();
  }

  async #toggle(): Promise<void> {
    if (this.#on) {
      this.#on = false;
    } else {
      const permission =
        Notification.permission === "default"
          ? await Notification.requestPermission()
          : Notification.permission;
      if (permission === "granted") this.#on = true;
      else this.#say("Notifications are blocked for this site in your browser's settings.");
    }
    store.set("notify", this.#on ? "on" : undefined);
    this.#show();
    this.#say(
      this.#on ? "Desktop notifications on for mentions and direct messages." : "Desktop notifications off.",
    );
  }

  #show(): void {
    const label = this.#on ? "Desktop notifications: on (turn off)" : "Desktop notifications: off (turn on)";
    this.#bell.setAttribute("aria-pressed", String(this.#on));
    this.#bell.setAttribute("aria-label", label);
    this.#bell.title = label;
    setIcon(this.#bell, this.#on ? "bell" : "bellOff");
  }

  /** Shows one, when it is on, allowed and the tab is hidden. */
  notify(room: string, title: string, body: string): void {
    if (!this.#on || !document.hidden || Notification.permission !== "granted") return;
    try {
      const n = new Notification(title, { body, tag: room });
      n.onclick = () => {
        window.focus();
        this.#open(room);
        n.close();
      };
    } catch {
      // Some browsers only allow notifications from a service worker: nothing to show then.
    }
  }
}
