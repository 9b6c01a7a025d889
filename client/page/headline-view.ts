/**
 * #headline: the connection in a word ("connected", "connecting…", "disconnected · reconnecting in
 * 3 s") with a "Reconnect now" button while waiting. The countdown ticks here, visibly, but is no
 * live region: the announcer says "Disconnected" and "Connected again" once each instead. The
 * connection id stays in the text for old browser tests, hidden from eyes and screen readers.
 */
import type { ConnectionState } from "../v2/api";
import { h } from "./dom";

export class HeadlineView {
  #ticker: ReturnType<typeof setInterval> | undefined;

  readonly #headline: HTMLElement;
  readonly #retry: HTMLButtonElement;

  constructor(headline: HTMLElement, retry: HTMLButtonElement) {
    this.#headline = headline;
    this.#retry = retry;
  }

  render(state: ConnectionState, id: string | undefined, retryInMs?: number, reason?: string): void {
    clearInterval(this.#ticker);
    this.#ticker = undefined;
    this.#headline.dataset.state = state;
    this.#retry.hidden = state !== "reconnecting" && state !== "offline";
    switch (state) {
      case "connected":
        this.#show("connected", id);
        break;
      case "connecting":
        this.#show("connecting…");
        break;
      case "reconnecting": {
        const until = Date.now() + (retryInMs ?? 0);
        const tick = () => {
          const seconds = Math.max(0, Math.ceil((until - Date.now()) / 1000));
          this.#show(
            seconds > 0 ? `disconnected · reconnecting in ${seconds} s` : "disconnected · reconnecting…",
          );
        };
        tick();
        if (retryInMs) this.#ticker = setInterval(tick, 250);
        break;
      }
      default:
        this.#show(reason ? `disconnected · ${reason}` : "disconnected");
    }
  }

  #show(label: string, id?: string): void {
    this.#headline.replaceChildren(
      h("span", { class: "label" }, label),
      id ? " " : "",
      id ? h("span", { class: "conn-id sr-only", attrs: { "aria-hidden": "true" } }, id) : "",
    );
    this.#headline.title = label;
  }
}
