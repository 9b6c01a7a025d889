/**
 * One process's replica of a room, built from a snapshot and then from the room's stream, entry by
 * entry: who is in it, the newest seq, the newest messages. A welcome built from it at any moment is
 * consistent with what the process publishes after that moment, which is what keeps clients gapless.
 */
import { type ChatMessage, compareNicks, LIMITS, nickKey, type PresenceEvent } from "../../protocol";
import { roomTopic } from "../peer";
import type { Page } from "../store";

/** Messages kept per room: enough to answer any `since` welcome without a round trip. */
export const RECENT_MESSAGES = LIMITS.sinceMax;

/** What the snapshot script returns: seq, n, last stream id, user entries, newest chats descending. */
export type SnapshotReply = [number, number, string, string[], string[]];

export class RoomView<C> {
  readonly topic: string;
  /** Snapshot applied: the reader may read this room's stream from `lastId`. */
  loaded = false;
  /** Out of step with the stream (a gap): replaced by a fresh view on next use. */
  broken = false;
  ready: Promise<void> = Promise.resolve();
  lastId = "0-0";
  /** Number of the last entry applied: entries carry 1, 2, 3, ... per room, so a gap shows. */
  lastN = 0;
  lastSeq = 0;
  /** nickKey -> nick of everyone in the room on every process. */
  readonly users = new Map<string, string>();
  /** Ascending, at most RECENT_MESSAGES. */
  recent: ChatMessage[] = [];
  /** This process's connections in the room, by connection id. */
  readonly members = new Map<string, C>();
  /** Connections in the room plus those on their way in; the view is dropped at 0. */
  holds = 0;
  /** Work due once the view has applied the entry `at` (a welcome after its own join). */
  waiters: Array<{ at: string; run: () => void }> = [];
  /** Acks owed once the chat with that seq has been published here. */
  readonly acks = new Map<number, Array<{ conn: C; id: string }>>();
  private sorted: string[] | null = null;

  constructor(readonly name: string) {
    this.topic = roomTopic(name);
  }

  applySnapshot([seq, n, lastId, users, recent]: SnapshotReply): void {
    this.lastSeq = seq;
    this.lastN = n;
    this.lastId = lastId;
    this.users.clear();
    for (const entry of users) {
      const nick = entry.split("|").slice(3).join("|");
      this.users.set(nickKey(nick), nick);
    }
    this.recent = recent.map((raw) => JSON.parse(raw) as ChatMessage).reverse();
    this.sorted = null;
    this.loaded = true;
  }

  applyPresence(e: PresenceEvent): void {
    if (e.event === "join") this.users.set(nickKey(e.nick), e.nick);
    else if (e.event === "leave") this.users.delete(nickKey(e.nick));
    else {
      this.users.delete(nickKey(e.from));
      this.users.set(nickKey(e.nick), e.nick);
    }
    this.sorted = null;
  }

  applyChat(msg: ChatMessage): void {
    this.lastSeq = msg.seq;
    this.recent.push(msg);
    if (this.recent.length > RECENT_MESSAGES) this.recent.shift();
  }

  /** Nicknames sorted case-insensitively; cached until the list changes. */
  sortedUsers(): string[] {
    if (!this.sorted) this.sorted = [...this.users.values()].sort(compareNicks);
    return this.sorted;
  }

  /** The newest `limit` messages; `more` when older ones exist (seqs are gapless from 1). */
  latest(limit: number): Page {
    const messages = this.recent.slice(-limit);
    return { messages, more: (messages[0]?.seq ?? 1) > 1 };
  }

  /** Every message after `since`, or the newest `limit` of them with `more`. */
  after(since: number, limit: number): Page {
    const missed = this.lastSeq - since;
    if (missed <= 0) return { messages: [], more: false };
    if (missed > limit) return { messages: this.recent.slice(-limit), more: true };
    return { messages: this.recent.filter((m) => m.seq > since), more: false };
  }
}
