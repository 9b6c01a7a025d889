/** An in-memory ChatStore with the same contract as SQLite's, for model tests and fault injection. */

import { randomToken } from "../../chat/tokens";
import { MemoryUsers } from "./memory-users";
import type { ChatStore, Page, PruneStep, SessionRecord, StoredMessage } from "./store";
import { toChatMessage } from "./store";

export class MemoryStore implements ChatStore {
  private readonly rooms = new Map<string, StoredMessage[]>();
  private readonly sessions = new Map<string, SessionRecord>();
  readonly users = new MemoryUsers((room) => this.rooms.get(room));

  lastSeq(room: string): number {
    const list = this.rooms.get(room);
    return list?.length ? (list[list.length - 1] as StoredMessage).seq : 0;
  }

  before(room: string, before: number, limit: number): Page {
    const older = (this.rooms.get(room) ?? []).filter((m) => m.seq < before);
    const page = older.slice(Math.max(0, older.length - limit));
    return { messages: page.map(toChatMessage), more: older.length > page.length };
  }

  after(room: string, after: number, limit: number): Page {
    const newer = (this.rooms.get(room) ?? []).filter((m) => m.seq > after);
    const page = newer.slice(Math.max(0, newer.length - limit));
    return { messages: page.map(toChatMessage), more: newer.length > page.length };
  }

  commit(messages: readonly StoredMessage[], sessions: readonly SessionRecord[]): void {
    // Check the whole batch before storing any of it: a bad message must leave nothing behind.
    const last = new Map<string, number>();
    for (const m of messages) {
      const prev = last.get(m.room) ?? this.rooms.get(m.room)?.at(-1)?.seq ?? 0;
      if (m.seq <= prev) throw new Error(`seq ${m.seq} already stored in ${m.room}`);
      last.set(m.room, m.seq);
    }
    for (const m of messages) {
      const list = this.rooms.get(m.room) ?? [];
      list.push({ ...m });
      this.rooms.set(m.room, list);
      this.users.posted(m);
    }
    for (const s of sessions) this.sessions.set(s.id, { ...s });
  }

  loadSession(id: string): SessionRecord | undefined {
    const s = this.sessions.get(id);
    return s && { ...s };
  }

  recentClientIds(session: string, room: string, limit: number): Array<[string, number]> {
    const list = this.rooms.get(room) ?? [];
    const out: Array<[string, number]> = [];
    for (let i = list.length - 1; i >= 0 && out.length < limit; i--) {
      const m = list[i] as StoredMessage;
      if (m.session === session && m.clientId !== null) out.push([m.clientId, m.seq]);
    }
    return out;
  }

  dropSessions(endedBefore: number): void {
    for (const [id, s] of this.sessions) {
      if (s.endedAt !== null && s.endedAt < endedBefore) this.sessions.delete(id);
    }
  }

  prune(keepPerRoom: number, olderThanMs: number): number {
    return this.pruneStep(keepPerRoom, olderThanMs, Number.POSITIVE_INFINITY).deleted;
  }

  /** Only rows deleted count as work here: looking at a room in memory costs next to nothing. */
  pruneStep(keepPerRoom: number, olderThanMs: number, work: number): PruneStep {
    if (keepPerRoom <= 0 && olderThanMs <= 0) return { deleted: 0, done: true };
    let deleted = 0;
    for (const [room, list] of this.rooms) {
      const beyond = keepPerRoom > 0 ? list.length - keepPerRoom : 0;
      let k = 0;
      // Never the newest: the room's seq must survive.
      for (; k < list.length - 1; k++) {
        const old = olderThanMs > 0 && (list[k] as StoredMessage).sentAt < olderThanMs;
        if (k >= beyond && !old) break;
        if (deleted + k >= work) {
          this.drop(room, list, k);
          return { deleted: deleted + k, done: false };
        }
      }
      this.drop(room, list, k);
      deleted += k;
    }
    return { deleted, done: true };
  }

  /** Deletes a room's oldest `k` messages, and their mentions. */
  private drop(room: string, list: StoredMessage[], k: number): void {
    if (k === 0) return;
    list.splice(0, k);
    this.users.pruned(room, (list[0] as StoredMessage).seq);
  }

  private readonly generation = randomToken(9);

  epoch(): string {
    return this.generation;
  }

  close(): void {}
}
