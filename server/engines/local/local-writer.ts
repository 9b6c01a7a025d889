/**
 * The local engine's end of the turn: what the turn queued (chats, presence, typing) is written in
 * one transaction with the session rows, then delivered room by room, in order. Nothing is delivered
 * before it is stored; a failed write answers `internal` and the seqs are used again.
 */
import type { PresenceEvent } from "../../../protocol";
import type { EngineConn, EngineSink, Kick, Post, RoomEntry } from "../../chat/engine";
import { describeError, type Logger } from "../../chat/log";
import type { Metrics } from "../../chat/metrics";
import type { LocalRoom, Queued } from "./local-room";
import type { LocalSessions, PendingChat } from "./local-sessions";
import type { ChatStore, StoredChange, StoredMessage } from "./store";

/** A log entry other than a chat, before it gets its number. */
export type Unnumbered =
  | { kind: "presence"; event: PresenceEvent; at: number; userId?: string | undefined }
  | { kind: "typing"; from: string; wire: string }
  | { kind: "replaced"; conn: string }
  | ({ kind: "kick" } & Kick);

/** Silence after the last commit before the store checkpoints (copies its WAL into the database). */
export const CHECKPOINT_IDLE_MS = 200;

/** Longest a session change (new connection, rename, end) waits to be written when no message goes. */
const SESSION_WRITE_MS = 250;

export interface WriterDeps<C extends EngineConn> {
  store: ChatStore;
  sessions: LocalSessions<C>;
  sink: () => EngineSink<C>;
  metrics: Metrics;
  log: Logger;
  now: () => number;
  schedule: (fn: () => void) => void;
  timer: (fn: () => void, ms: number) => void;
  /** A room was delivered: the engine may drop it if nothing holds it. */
  delivered: (room: LocalRoom<C>) => void;
}

export class LocalWriter<C extends EngineConn> {
  private readonly dirty = new Set<LocalRoom<C>>();
  private flushScheduled = false;
  private stopped = false;
  /** When the pending delayed flush runs; +Infinity when none is set. */
  private timerAt = Number.POSITIVE_INFINITY;
  private sessionsWrittenAt = Number.NEGATIVE_INFINITY;
  private committedAt = Number.NEGATIVE_INFINITY;
  private checkpointArmed = false;
  private isoMs = Number.NaN;
  private isoText = "";

  constructor(private readonly d: WriterDeps<C>) {}

  /** Queues an entry in `room`'s log; returns its number. */
  append(room: LocalRoom<C>, entry: Unnumbered): number {
    const n = ++room.n;
    room.outbox.push({ ...entry, n });
    this.touch(room);
    return n;
  }

  /** Queues a change (numbered like any entry); it is stored at the end of the turn with the chats. */
  appendChange(room: LocalRoom<C>, stored: StoredChange): void {
    room.outbox.push({ n: ++room.n, kind: "change", stored });
    this.touch(room);
  }

  /** Queues a chat (numbered like any entry); it is stored at the end of the turn. */
  appendChat(room: LocalRoom<C>, chat: PendingChat<C>): void {
    room.outbox.push({ n: ++room.n, kind: "chat", chat });
    this.touch(room);
  }

  /** A session changed: it is written with the next messages, or within SESSION_WRITE_MS. */
  wake(): void {
    if (this.flushScheduled || this.stopped) return;
    this.flushScheduled = true;
    this.d.schedule(() => this.flush(false));
  }

  /** `force`: write the sessions now too (at shutdown). */
  flush(force: boolean): void {
    this.flushScheduled = false;
    if (this.stopped) return;
    try {
      this.flushRooms(force);
    } catch (err) {
      this.d.log.log("error", "flush_failed", describeError(err));
    }
  }

  stop(): void {
    this.flush(true);
    this.stopped = true;
  }

  private touch(room: LocalRoom<C>): void {
    this.dirty.add(room);
    this.wake();
  }

  private flushRooms(force: boolean): void {
    const sessions = this.d.sessions;
    if (this.dirty.size === 0 && sessions.pending === 0) return;
    const batch: Array<[LocalRoom<C>, Array<Queued<C>>]> = [];
    for (const room of this.dirty) {
      batch.push([room, room.outbox]);
      room.outbox = [];
    }
    this.dirty.clear();
    const messages: StoredMessage[] = [];
    const changes: StoredChange[] = [];
    for (const [, queued] of batch) {
      for (const q of queued) {
        if (q.kind === "chat") messages.push(q.chat.msg);
        else if (q.kind === "change") changes.push(q.stored);
      }
    }
    // Session rows ride along with messages, or go every SESSION_WRITE_MS: a join storm then costs
    // one transaction per interval, not one per join. A crash may forget only the newest sessions.
    const now = this.d.now();
    const sinceWrite = now - this.sessionsWrittenAt;
    const writeSessions = messages.length + changes.length > 0 || force || sinceWrite >= SESSION_WRITE_MS;
    if (!writeSessions && sessions.pending > 0) this.later(SESSION_WRITE_MS - sinceWrite);
    const written = writeSessions ? sessions.take() : { records: [], written: () => {} };
    let stored = true;
    if (messages.length > 0 || changes.length > 0 || written.records.length > 0) {
      try {
        this.d.store.commit(messages, written.records, changes);
        this.d.metrics.storeCommits++;
        this.committedAt = now;
        this.armCheckpoint(CHECKPOINT_IDLE_MS);
        written.written();
        this.sessionsWrittenAt = now;
      } catch (err) {
        stored = false;
        this.d.metrics.storeFailures++;
        this.d.log.log("error", "store_commit_failed", { messages: messages.length, ...describeError(err) });
      }
    }
    for (const [room] of batch) {
      room.changed.clear();
      if (stored) {
        room.committedSeq = room.nextSeq - 1;
        room.committedRev = room.nextRev - 1;
      } else {
        // Nothing of this batch was seen: its seqs and revs are used again.
        room.nextSeq = room.committedSeq + 1;
        room.nextRev = room.committedRev + 1;
      }
    }
    for (const [room, queued] of batch) this.deliver(room, queued, stored);
  }

  /** The entries go out in order, then each chat's sender learns its seq (and gets its ack). */
  private deliver(room: LocalRoom<C>, queued: Array<Queued<C>>, stored: boolean): void {
    const sink = this.d.sink();
    const entries: RoomEntry[] = [];
    const settled: Array<PendingChat<C>> = [];
    for (const q of queued) {
      if (q.kind === "change") {
        entries.push(stored ? { n: q.n, kind: "change", change: q.stored.change } : { n: q.n, kind: "void" });
        continue;
      }
      if (q.kind !== "chat") {
        entries.push(q);
        continue;
      }
      const { msg } = q.chat;
      this.settleRef(q.chat, stored);
      settled.push(q.chat);
      if (!stored) {
        entries.push({ n: q.n, kind: "void" });
        continue;
      }
      const sentAt = this.iso(msg.sentAt);
      const post: Post = {
        type: "chat",
        room: msg.room,
        seq: msg.seq,
        nick: msg.nick,
        text: msg.text,
        sentAt,
      };
      if (msg.userId) {
        post.userId = msg.userId;
        if (msg.kind) post.kind = msg.kind;
        if (msg.replyTo) post.replyTo = msg.replyTo;
        if (msg.mentions) post.mentions = msg.mentions;
      }
      entries.push({ n: q.n, kind: "chat", msg: post });
    }
    sink.deliver(room.name, entries);
    for (const chat of settled) {
      const { id, msg } = chat;
      if (stored) {
        sink.committed(chat.from, room.name, id, msg.seq);
        for (const to of chat.dupes) sink.committed(to, room.name, id, msg.seq);
      } else {
        sink.failed(chat.from, id);
        for (const to of chat.dupes) sink.failed(to, id);
      }
    }
    this.d.delivered(room);
  }

  /** A stored chat's reference keeps only its seq; a failed one is forgotten, so a retry is new. */
  private settleRef(chat: PendingChat<C>, stored: boolean): void {
    if (chat.key === undefined) return;
    const sent = chat.session.sent;
    const ref = sent.get(chat.key);
    if (ref?.pending !== chat) return;
    if (stored) ref.pending = undefined;
    else sent.delete(chat.key);
  }

  /** A checkpoint once nothing was committed for CHECKPOINT_IDLE_MS: the busy turns never pay for it. */
  private armCheckpoint(ms: number): void {
    if (this.checkpointArmed || !this.d.store.checkpoint) return;
    this.checkpointArmed = true;
    this.d.timer(() => {
      this.checkpointArmed = false;
      if (this.stopped) return;
      const quiet = this.d.now() - this.committedAt;
      if (quiet < CHECKPOINT_IDLE_MS) return this.armCheckpoint(CHECKPOINT_IDLE_MS - quiet);
      try {
        this.d.store.checkpoint?.();
        this.d.metrics.storeCheckpoints++;
      } catch (err) {
        this.d.log.log("warn", "checkpoint_failed", describeError(err));
      }
    }, ms);
  }

  /** Makes sure a flush runs within `ms`. */
  private later(ms: number): void {
    const at = this.d.now() + ms;
    if (at >= this.timerAt) return;
    this.timerAt = at;
    this.d.timer(() => {
      if (this.timerAt <= this.d.now()) this.timerAt = Number.POSITIVE_INFINITY;
      this.flush(false);
    }, ms);
  }

  /** The ISO form of a time, computed once per millisecond: a busy turn stamps many messages alike. */
  private iso(ms: number): string {
    if (ms !== this.isoMs) {
      this.isoMs = ms;
      this.isoText = new Date(ms).toISOString();
    }
    return this.isoText;
  }
}
