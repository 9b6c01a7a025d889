/**
 * The polite live region: each new post in the room shown (and mentions elsewhere) is read out once,
 * as are changes of the connection; the reconnect countdown never is.
 */
export class Announcer {
  readonly #said = new Set<string>();
  #queue: string[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly region: HTMLElement) {}

  /** Says `text`; with a `key`, only the first time that key is given. */
  say(text: string, key?: string): void {
    if (key !== undefined) {
      if (this.#said.has(key)) return;
      this.#said.add(key);
      if (this.#said.size > 2000) this.#said.clear();
    }
    this.#queue.push(text);
    // A burst of posts is said as one update rather than cutting each other off.
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.region.textContent = this.#queue.splice(0).slice(-5).join("\n");
    }, 300);
  }
}
