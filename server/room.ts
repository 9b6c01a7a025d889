/** One room: its members by nickname key, its sequence counters and what waits for the next flush. */
import { compareNicks, nickKey, type PresenceEvent } from "../protocol";
import { roomTopic } from "./peer";
import type { StoredMessage } from "./store";

/** The part of a connection a room needs to know. */
export interface Member {
  nick: string;
}

/** Things a room sends at the next flush, in the order they happened. */
export type Outgoing<C> =
  | { kind: "chat"; msg: StoredMessage; from: C; id?: string; dupes: C[] }
  | { kind: "presence"; event: PresenceEvent };

export class Room<C extends Member> {
  readonly topic: string;
  readonly members = new Map<string, C>();
  /** Next seq to hand out, and the newest one committed to storage. */
  nextSeq: number;
  committedSeq: number;
  outbox: Array<Outgoing<C>> = [];
  /** When its members' backlogs were last checked. */
  slowCheckAt = Number.NEGATIVE_INFINITY;
  /** When the oldest thing in the outbox was queued. */
  outboxSince = 0;
  /** Presence and welcomes held back this flush, to go out together with the next ones. */
  held = false;
  private sorted: string[] | null = null;

  constructor(
    readonly name: string,
    lastSeq: number,
  ) {
    this.topic = roomTopic(name);
    this.nextSeq = lastSeq + 1;
    this.committedSeq = lastSeq;
  }

  isTaken(key: string): boolean {
    return this.members.has(key);
  }

  add(member: C): void {
    this.members.set(nickKey(member.nick), member);
    this.sorted = null;
  }

  remove(member: C): void {
    const key = nickKey(member.nick);
    if (this.members.get(key) === member) this.members.delete(key);
    this.sorted = null;
  }

  rename(member: C, nick: string): void {
    this.remove(member);
    member.nick = nick;
    this.add(member);
  }

  /** Nicknames sorted case-insensitively; cached until membership changes. */
  users(): string[] {
    if (!this.sorted) this.sorted = [...this.members.values()].map((m) => m.nick).sort(compareNicks);
    return this.sorted;
  }

  get idle(): boolean {
    return this.members.size === 0 && this.outbox.length === 0;
  }
}
