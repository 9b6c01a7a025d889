/**
 * This process's replica of one room, built from an engine snapshot and then from the room's log,
 * entry by entry: who is in it, the newest seq, the newest messages, and the members here. A welcome
 * built from it at any moment agrees with everything published after that moment, which is what
 * keeps clients gapless.
 */
import { type ChatMessage, compareNicks, LIMITS, nickKey, type PresenceEvent } from "../../protocol";
import type { Page, RoomSnapshot } from "./engine";
import { roomTopic } from "./peer";

/** Messages kept per room: enough to answer any `since` welcome without asking the engine. */
export const RECENT_MESSAGES = LIMITS.sinceMax;

/** `C`: the members' type (the core's Connection), kept generic so the two modules do not import each other. */
export class Replica<C = unknown> {
  readonly topic: string;
  /** Snapshot applied: log entries after `lastN` apply from now on. */
  loaded = false;
  /** Out of step with the log: replaced by a fresh replica on next use. */
  broken = false;
  /** Number of the last log entry applied. */
  lastN = 0;
  lastSeq = 0;
  epoch: string | undefined;
  /** nickKey -> nick of everyone in the room, on every process. */
  readonly users = new Map<string, string>();
  /** This process's connections in the room, by connection id. */
  readonly members = new Map<string, C>();
  /** Connections in the room plus those on their way in; the replica is dropped at 0. */
  holds = 0;
  /** Work due once the entry `at` is applied and no presence is held (welcomes). */
  waiters: Array<{ at: number; run: () => void }> = [];
  /** Acks owed once the chat with that seq has been published here. */
  readonly acks = new Map<number, Array<{ conn: C; id: string }>>();
  /** Presence events applied but not yet published (a big room shares them out per window). */
  held: PresenceEvent[] = [];
  heldSince = 0;
  holdTimer = false;
  /** When its members' backlogs were last checked. */
  slowCheckAt = Number.NEGATIVE_INFINITY;
  /** Called once the snapshot is in (or failed to come). */
  private onLoad: Array<(err: unknown) => void> = [];
  /** Ascending; trimmed to RECENT_MESSAGES lazily, so a busy room does not shift on every message. */
  private recent: ChatMessage[] = [];
  private sorted: string[] | null = null;

  constructor(
    readonly name: string,
    /** False when the engine reads welcome pages from its storage: no copy of messages is kept. */
    private readonly keepsRecent = true,
  ) {
    this.topic = roomTopic(name);
  }

  /** Runs `fn` once the snapshot is in (at once if it is); `fn` gets the load error, if any. */
  whenLoaded(fn: (err: unknown) => void): void {
    if (this.loaded) fn(undefined);
    else if (this.broken) fn(new Error(`room ${this.name} could not be loaded`));
    else this.onLoad.push(fn);
  }

  applySnapshot(s: RoomSnapshot): void {
    this.lastSeq = s.lastSeq;
    this.lastN = s.lastN;
    this.epoch = s.epoch;
    this.users.clear();
    for (const nick of s.users) this.users.set(nickKey(nick), nick);
    this.recent = this.keepsRecent ? s.recent.slice(-RECENT_MESSAGES) : [];
    this.sorted = null;
    this.loaded = true;
    this.settleLoad(undefined);
  }

  loadFailed(err: unknown): void {
    this.broken = true;
    this.settleLoad(err);
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
    if (!this.keepsRecent) return;
    this.recent.push(msg);
    if (this.recent.length >= 2 * RECENT_MESSAGES) this.recent = this.recent.slice(-RECENT_MESSAGES);
  }

  /** Nicknames sorted case-insensitively; cached until the list changes. */
  sortedUsers(): string[] {
    if (!this.sorted) this.sorted = [...this.users.values()].sort(compareNicks);
    return this.sorted;
  }

  /** The newest `limit` messages; `more` when older ones exist (seqs are gapless from 1). */
  latest(limit: number): Page {
    const messages = this.recent.slice(-limit);
    return { messages, more: (messages[0]?.seq ?? this.lastSeq + 1) > 1 };
  }

  /** Every message after `since`, or the newest `limit` of them with `more`. */
  after(since: number, limit: number): Page {
    const missed = this.lastSeq - since;
    if (missed <= 0) return { messages: [], more: false };
    if (missed > limit) return { messages: this.recent.slice(-limit), more: true };
    return { messages: this.recent.slice(-missed), more: false };
  }

  /** Runs `fn` once entry `at` is applied and nothing is held back (at once if so). */
  at(at: number, fn: () => void): void {
    if (at <= this.lastN && this.held.length === 0) fn();
    else this.waiters.push({ at, run: fn });
  }

  /** Takes the waiters whose entry is applied, keeping the rest. */
  takeDue(): Array<() => void> {
    if (this.waiters.length === 0) return [];
    const due = this.waiters.filter((w) => w.at <= this.lastN).map((w) => w.run);
    if (due.length > 0) this.waiters = this.waiters.filter((w) => w.at > this.lastN);
    return due;
  }

  private settleLoad(err: unknown): void {
    const fns = this.onLoad;
    this.onLoad = [];
    for (const fn of fns) fn(err);
  }
}
