/** The typing line: who is typing now, each name fading a few seconds after their last keystroke. */
import { nickKey } from "../../protocol";

const SHOWN_FOR_MS = 4000;

export class TypingView {
  private readonly typing = new Map<string, { nick: string; timer: ReturnType<typeof setTimeout> }>();

  constructor(private readonly line: HTMLElement) {}

  add(nick: string): void {
    this.remove(nick);
    const timer = setTimeout(() => this.remove(nick), SHOWN_FOR_MS);
    this.typing.set(nickKey(nick), { nick, timer });
    this.render();
  }

  remove(nick: string): void {
    const key = nickKey(nick);
    const entry = this.typing.get(key);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.typing.delete(key);
    this.render();
  }

  clear(): void {
    for (const { timer } of this.typing.values()) clearTimeout(timer);
    this.typing.clear();
    this.render();
  }

  private render(): void {
    const names = [...this.typing.values()].map((e) => e.nick);
    this.line.textContent =
      names.length === 0
        ? ""
        : names.length === 1
          ? `${names[0]} is typing…`
          : names.length <= 3
            ? `${names.slice(0, -1).join(", ")} and ${names.at(-1)} are typing…`
            : "several people are typing…";
  }
}
