/** #headline: the connection state, always visible, with a countdown while waiting to reconnect. */
import type { ConnectionState } from "../client-events";
import { h } from "./dom";

export class HeadlineView {
  private ticker: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly headline: HTMLElement,
    /** "Reconnect now", shown while waiting or stopped. */
    private readonly retry: HTMLButtonElement,
  ) {}

  render(state: ConnectionState): void {
    clearInterval(this.ticker);
    this.ticker = undefined;
    this.headline.dataset.status = state.status;
    this.retry.hidden = state.status !== "waiting" && state.status !== "closed";
    switch (state.status) {
      case "connected":
        this.show(
          "connected",
          h("span", { class: "conn-id", attrs: { title: "connection id" } }, state.connectionId),
        );
        break;
      case "connecting":
        this.show(state.attempt === 0 ? "connecting…" : "disconnected · reconnecting…");
        break;
      case "waiting": {
        const tick = () => {
          const seconds = Math.max(0, Math.ceil((state.retryAt - Date.now()) / 1000));
          this.show(`disconnected · reconnecting in ${seconds} s`);
        };
        tick();
        this.ticker = setInterval(tick, 250);
        break;
      }
      case "closed":
        this.show(`disconnected · ${state.reason}`);
        break;
    }
  }

  private show(label: string, extra?: Node): void {
    this.headline.replaceChildren(h("span", { class: "label" }, label), extra ?? "");
    if (extra) this.headline.insertBefore(document.createTextNode(" "), extra);
  }
}
