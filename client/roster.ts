/** The room's user list as a client keeps it: a welcome's (or `users`') list, then presence events in order. */
import { compareNicks, nickKey, type PresenceEvent } from "../protocol";

export class Roster {
  private readonly byKey = new Map<string, string>();
  private sorted: string[] | null = null;

  /** Replaces the list with an authoritative one from `welcome` or `users`. */
  reset(users: readonly string[]): void {
    this.byKey.clear();
    for (const nick of users) this.byKey.set(nickKey(nick), nick);
    this.sorted = null;
  }

  /** Applies one event; idempotent, so an event a fresher `users` list already holds changes nothing. */
  apply(event: PresenceEvent): void {
    if (event.event === "join") this.byKey.set(nickKey(event.nick), event.nick);
    else if (event.event === "leave") this.byKey.delete(nickKey(event.nick));
    else {
      this.byKey.delete(nickKey(event.from));
      this.byKey.set(nickKey(event.nick), event.nick);
    }
    this.sorted = null;
  }

  has(nick: string): boolean {
    return this.byKey.has(nickKey(nick));
  }

  get size(): number {
    return this.byKey.size;
  }

  /** Nicknames in the protocol's order (case-insensitive). */
  list(): readonly string[] {
    if (!this.sorted) this.sorted = [...this.byKey.values()].sort(compareNicks);
    return this.sorted;
  }
}
