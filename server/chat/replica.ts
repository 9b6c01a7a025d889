/**
 * This process's replica of one room, built from an engine snapshot and then from the room's log,
 * entry by entry: who is in it, the newest seq, the newest messages, and the members here. A welcome
 * built from it at any moment agrees with everything published after that moment, which is what
 * keeps clients gapless.
 */
import { compareNicks, LIMITS, nickKey, type PresenceEvent, type v2 } from "../../protocol";
import type { Page, Post, RoomSnapshot } from "./engine";
import { roomTopic, roomTopicV2 } from "./peer";
import { foldWire } from "./posts";

/** Messages kept per room: enough to answer any `since` welcome without asking the engine. */
export const RECENT_MESSAGES = LIMITS.sinceMax;

/** `C`: the members' type (the core's Connection), kept generic so the two modules do not import each other. */
export class Replica<C = unknown> {
  readonly topic: string;
  /** v2 connections get their own topic: a post's frame differs between the versions. */
  readonly topicV2: string;
  /** Snapshot applied: log entries after `lastN` apply from now on. */
  loaded = false;
  /** Out of step with the log: replaced by a fresh replica on next use. */
  broken = false;
  /** Number of the last log entry applied. */
  lastN = 0;
  lastSeq = 0;
  /** The newest change's rev applied, and the room's topic (what people see, not a pub/sub topic). */
  lastRev = 0;
  subject = "";
  epoch: string | undefined;
  /** nickKey -> nick of everyone in the room, on every process. */
  readonly users = new Map<string, string>();
  /** nickKey -> userId of the v2 users among them. */
  readonly owners = new Map<string, string>();
  /** This process's connections in the room, by connection id (a v2 connection's membership too). */
  readonly members = new Map<string, C>();
  /** How many of `members` are v2 memberships (the rest are v1 connections). */
  v2Members = 0;
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
  private recent: Post[] = [];
  private sorted: string[] | null = null;

  constructor(
    readonly name: string,
    /** False when the engine reads welcome pages from its storage: no copy of messages is kept. */
    private readonly keepsRecent = true,
  ) {
    this.topic = roomTopic(name);
    this.topicV2 = roomTopicV2(name);
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
    this.lastRev = s.lastRev ?? 0;
    this.subject = s.topic ?? "";
    this.epoch = s.epoch;
    this.users.clear();
    this.owners.clear();
    for (const nick of s.users) this.users.set(nickKey(nick), nick);
    if (s.owners) for (const [nick, userId] of s.owners) this.owners.set(nickKey(nick), userId);
    this.recent = this.keepsRecent ? s.recent.slice(-RECENT_MESSAGES) : [];
    this.sorted = null;
    this.loaded = true;
    this.settleLoad(undefined);
  }

  loadFailed(err: unknown): void {
    this.broken = true;
    this.settleLoad(err);
  }

  applyPresence(e: PresenceEvent, userId?: string): void {
    const gone: string[] = [];
    let come: string | undefined;
    const drop = (key: string) => {
      const nick = this.users.get(key);
      if (nick === undefined) return;
      gone.push(nick);
      this.users.delete(key);
    };
    if (e.event === "join") {
      const key = nickKey(e.nick);
      drop(key);
      this.users.set(key, e.nick);
      come = e.nick;
      if (userId !== undefined) this.owners.set(key, userId);
    } else if (e.event === "leave") {
      const key = nickKey(e.nick);
      drop(key);
      this.owners.delete(key);
    } else {
      const from = nickKey(e.from);
      const to = nickKey(e.nick);
      const owner = this.owners.get(from);
      drop(from);
      this.owners.delete(from);
      drop(to);
      this.users.set(to, e.nick);
      come = e.nick;
      if (owner !== undefined) this.owners.set(to, owner);
    }
    // A join storm changes the list at every welcome: a sort each time was most of a join's cost.
    if (this.sorted) this.sorted = resorted(this.sorted, gone, come);
  }

  /** The user holding `nick` here: a userId, "" for a v1 connection, undefined when nobody does. */
  holder(nick: string): string | undefined {
    return this.holderOf(nickKey(nick));
  }

  holderOf(key: string): string | undefined {
    if (!this.users.has(key)) return undefined;
    return this.owners.get(key) ?? "";
  }

  /** Someone other than v2 user `userId` holds the name with this nickKey here. */
  takenFrom(userId: string, key: string): boolean {
    const holder = this.holderOf(key);
    return holder !== undefined && holder !== userId;
  }

  applyChat(msg: Post): void {
    this.lastSeq = msg.seq;
    if (!this.keepsRecent) return;
    this.recent.push(msg);
    if (this.recent.length >= 2 * RECENT_MESSAGES) this.recent = this.recent.slice(-RECENT_MESSAGES);
  }

  /** A change, in rev order: the topic, and the copy of its post if this replica keeps one. */
  applyChange(change: v2.Change): void {
    this.lastRev = change.rev;
    if (change.type === "topic") {
      this.subject = change.topic;
      return;
    }
    if (!this.keepsRecent) return;
    const i = this.recent.findIndex((p) => p.seq === change.seq);
    const post = this.recent[i];
    if (post) this.recent[i] = foldWire(post, change);
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

/**
 * `list` (in compareNicks order) without the names `gone` and with `come`, as a new array (callers may
 * hold the old one): a binary search each, not a sort.
 */
export function resorted(
  list: readonly string[],
  gone: readonly string[],
  come: string | undefined,
): string[] {
  const out = list.slice();
  for (const nick of gone) {
    const i = lowerBound(out, nick);
    if (out[i] === nick) out.splice(i, 1);
  }
  if (come !== undefined) out.splice(lowerBound(out, come), 0, come);
  return out;
}

/** The first index whose name does not sort before `nick`. */
function lowerBound(list: readonly string[], nick: string): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareNicks(list[mid] as string, nick) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
