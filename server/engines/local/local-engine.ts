/**
 * The engine of one process: seqs from counters in memory, messages and sessions in a ChatStore
 * (SQLite or memory), nickname claims in a map. What a turn queues is written in one transaction at
 * the end of the turn, then delivered in order. Synchronous: every callback runs before it returns.
 */
import { firstFreeNick, LIMITS, nickKey, type PresenceEvent } from "../../../protocol";
import type {
  Claim,
  Done,
  Engine,
  EngineConn,
  EngineSink,
  EnterRequest,
  Page,
  RenameOutcome,
  RoomCount,
  RoomEntry,
  RoomSnapshot,
} from "../../chat/engine";
import { describeError, type Logger, silentLogger } from "../../chat/log";
import { Metrics } from "../../chat/metrics";
import { LocalRoom, type Queued } from "./local-room";
import { LocalSessions, type PendingChat, sentKey, toRecord } from "./local-sessions";
import type { ChatStore, StoredMessage } from "./store";

export interface LocalEngineDeps {
  store: ChatStore;
  resumeTtlMs: number;
  dedupeWindow: number;
  now?: () => number;
  /** Runs the flush after the current turn; the server passes setImmediate. */
  schedule?: (fn: () => void) => void;
  /** Runs a flush later (session rows). */
  timer?: (fn: () => void, ms: number) => void;
  log?: Logger;
  metrics?: Metrics;
}

/** A log entry other than a chat, before it gets its number. */
type Unnumbered =
  | { kind: "presence"; event: PresenceEvent; at: number }
  | { kind: "typing"; from: string; wire: string }
  | { kind: "replaced"; conn: string };

/** Longest a session change (new connection, rename, end) waits to be written when no message goes. */
const SESSION_WRITE_MS = 250;

export class LocalEngine<C extends EngineConn> implements Engine<C> {
  readonly ready = Promise.resolve();
  private sink!: EngineSink<C>;
  private readonly store: ChatStore;
  private readonly sessions: LocalSessions<C>;
  private readonly rooms = new Map<string, LocalRoom<C>>();
  private readonly dirty = new Set<LocalRoom<C>>();
  private readonly now: () => number;
  private readonly schedule: (fn: () => void) => void;
  private readonly timer: (fn: () => void, ms: number) => void;
  private readonly log: Logger;
  private readonly metrics: Metrics;
  private readonly resumeTtlMs: number;
  private flushScheduled = false;
  private stopped = false;
  /** When the pending delayed flush runs; +Infinity when none is set. */
  private timerAt = Number.POSITIVE_INFINITY;
  private sessionsWrittenAt = Number.NEGATIVE_INFINITY;
  private guestCounter = 0;
  private isoMs = Number.NaN;
  private isoText = "";

  constructor(deps: LocalEngineDeps) {
    this.store = deps.store;
    this.sessions = new LocalSessions(deps.store, deps.dedupeWindow, deps.resumeTtlMs);
    this.resumeTtlMs = deps.resumeTtlMs;
    this.now = deps.now ?? Date.now;
    this.schedule = deps.schedule ?? ((fn) => setTimeout(fn, 0));
    this.timer = deps.timer ?? ((fn, ms) => setTimeout(fn, ms));
    this.log = deps.log ?? silentLogger;
    this.metrics = deps.metrics ?? new Metrics();
  }

  bind(sink: EngineSink<C>): void {
    this.sink = sink;
  }

  load(name: string, done: Done<RoomSnapshot>): void {
    let snapshot: RoomSnapshot;
    try {
      const room = this.room(name);
      // The snapshot is of what was delivered: write and deliver what waits first (rare: a room
      // left and entered again within one turn).
      if (room.outbox.length > 0) this.flush(false);
      room.followed = true;
      snapshot = {
        lastSeq: room.committedSeq,
        lastN: room.n,
        users: [...room.claims.values()].map((c) => c.nick),
        recent: this.store.before(name, room.committedSeq + 1, LIMITS.sinceMax).messages,
      };
    } catch (err) {
      done(err);
      return;
    }
    done(undefined, snapshot);
  }

  unload(name: string): void {
    const room = this.rooms.get(name);
    if (!room) return;
    room.followed = false;
    if (room.idle) this.rooms.delete(name);
  }

  enter(conn: C, req: EnterRequest, done: Done<Claim>): void {
    let claim: Claim;
    try {
      const room = this.room(req.room);
      const now = this.now();
      const resumed = req.resume
        ? this.sessions.resumable(req.resume, room.name, now, req.fixedNick)
        : undefined;
      // A connection moving to another room keeps its session (and so its resume token).
      const own = conn.session === "" ? undefined : this.sessions.get(conn.session);
      const session = resumed ?? own ?? this.sessions.create(room.name);
      const held = resumed ? room.claims.get(nickKey(resumed.nick)) : undefined;
      let nick: string;
      let at: number;
      if (resumed && held && held.connId === resumed.connId && held.connId !== conn.id) {
        // The user never left: the new connection takes the nickname over without presence events.
        const stale = held.connId;
        held.connId = conn.id;
        nick = held.nick;
        at = this.append(room, { kind: "replaced", conn: stale });
      } else {
        const wanted = resumed?.nick || req.fixedNick || req.wanted || this.guestNick(room);
        nick = firstFreeNick(wanted, (key) => room.claims.has(key));
        room.claims.set(nickKey(nick), { connId: conn.id, nick });
        at = this.append(room, { kind: "presence", event: { event: "join", nick }, at: now });
      }
      session.connId = conn.id;
      session.endedAt = null;
      this.sessions.track(session, room.name, nick);
      this.wake();
      claim = { nick, session: session.id, at };
    } catch (err) {
      done(err);
      return;
    }
    done(undefined, claim);
  }

  leave(conn: C, name: string, ending: boolean): void {
    const room = this.rooms.get(name);
    const key = nickKey(conn.nick);
    const claim = room?.claims.get(key);
    if (room && claim && claim.connId === conn.id) {
      room.claims.delete(key);
      this.append(room, { kind: "presence", event: { event: "leave", nick: claim.nick }, at: this.now() });
    }
    const session = this.sessions.get(conn.session);
    if (ending && session && session.connId === conn.id) {
      this.sessions.end(session, this.now());
      this.wake();
    }
  }

  chat(conn: C, name: string, text: string, id: string | undefined): void {
    const room = this.rooms.get(name);
    const session = this.sessions.get(conn.session);
    if (!room || !session) {
      this.sink.failed(conn, id);
      return;
    }
    const key = id === undefined ? undefined : sentKey(name, id);
    const seen = key === undefined ? undefined : session.sent.get(key);
    if (seen && id !== undefined) {
      // A retry: never stored twice; the original ack goes out again (after its commit if pending).
      if (seen.pending) seen.pending.dupes.push(conn);
      else this.sink.committed(conn, name, id, seen.seq);
      return;
    }
    const msg: StoredMessage = {
      room: name,
      seq: room.nextSeq++,
      nick: conn.nick,
      text,
      sentAt: this.now(),
      session: session.id,
      clientId: id ?? null,
    };
    const chat: PendingChat<C> = { msg, from: conn, id, dupes: [] };
    room.outbox.push({ n: ++room.n, kind: "chat", chat });
    this.dirty.add(room);
    if (key !== undefined) this.sessions.remember(session, key, { seq: msg.seq, pending: chat });
    this.wake();
  }

  rename(conn: C, name: string, nick: string, done: Done<RenameOutcome>): void {
    const room = this.rooms.get(name);
    const key = nickKey(conn.nick);
    const claim = room?.claims.get(key);
    if (!room || !claim || claim.connId !== conn.id) {
      done(undefined, "gone");
      return;
    }
    const newKey = nickKey(nick);
    if (newKey !== key && room.claims.has(newKey)) {
      done(undefined, "taken");
      return;
    }
    room.claims.delete(key);
    room.claims.set(newKey, { connId: conn.id, nick });
    const event: PresenceEvent = { event: "nick", from: claim.nick, nick };
    this.append(room, { kind: "presence", event, at: this.now() });
    const session = this.sessions.get(conn.session);
    if (session) this.sessions.track(session, name, nick);
    done(undefined, "ok");
  }

  typing(conn: C, name: string, wire: string): void {
    const room = this.rooms.get(name);
    if (room) this.append(room, { kind: "typing", from: conn.id, wire });
  }

  history(room: string, before: number, limit: number, done: Done<Page>): void {
    let page: Page;
    try {
      page = this.store.before(room, before, limit);
    } catch (err) {
      done(err);
      return;
    }
    done(undefined, page);
  }

  roomList(): RoomCount[] {
    const out: RoomCount[] = [];
    for (const room of this.rooms.values()) {
      if (room.claims.size > 0) out.push({ room: room.name, users: room.claims.size });
    }
    return out.sort((a, b) => b.users - a.users || (a.room < b.room ? -1 : 1));
  }

  /**
   * Commits what the turn queued in one transaction, then delivers it room by room, in order.
   * Nothing is delivered before it is stored; a failed write answers `internal` and reuses the seqs.
   */
  flush(force: boolean): void {
    this.flushScheduled = false;
    if (this.stopped) return;
    try {
      this.flushRooms(force);
    } catch (err) {
      this.log.log("error", "flush_failed", describeError(err));
    }
  }

  sweep(): void {
    try {
      this.sessions.sweep(this.now() - this.resumeTtlMs);
    } catch (err) {
      this.log.log("warn", "session_sweep_failed", describeError(err));
    }
  }

  /** Writes what is left and closes the store: the engine owns it from construction on. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.flush(true);
    this.stopped = true;
    this.store.close();
  }

  async quiesce(): Promise<void> {
    this.flush(false);
  }

  private flushRooms(force: boolean): void {
    const sessions = this.sessions.dirty;
    if (this.dirty.size === 0 && sessions.size === 0) return;
    const batch: Array<[LocalRoom<C>, Array<Queued<C>>]> = [];
    for (const room of this.dirty) {
      batch.push([room, room.outbox]);
      room.outbox = [];
    }
    this.dirty.clear();
    const messages: StoredMessage[] = [];
    for (const [, queued] of batch) for (const q of queued) if (q.kind === "chat") messages.push(q.chat.msg);
    // Session rows ride along with messages, or go every SESSION_WRITE_MS: a join storm then costs
    // one transaction per interval, not one per join. A crash may forget only the newest sessions.
    const now = this.now();
    const sinceWrite = now - this.sessionsWrittenAt;
    const writeSessions = messages.length > 0 || force || sinceWrite >= SESSION_WRITE_MS;
    if (!writeSessions && sessions.size > 0) this.later(SESSION_WRITE_MS - sinceWrite);
    const written = writeSessions ? [...sessions] : [];
    let stored = true;
    if (messages.length > 0 || written.length > 0) {
      try {
        this.store.commit(messages, written.map(toRecord));
        this.metrics.storeCommits++;
        for (const s of written) sessions.delete(s);
        this.sessionsWrittenAt = now;
      } catch (err) {
        stored = false;
        this.metrics.storeFailures++;
        this.log.log("error", "store_commit_failed", { messages: messages.length, ...describeError(err) });
      }
    }
    for (const [room] of batch) {
      if (stored) room.committedSeq = room.nextSeq - 1;
      else room.nextSeq = room.committedSeq + 1; // nothing of this batch was seen: its seqs are reused
    }
    for (const [room, queued] of batch) this.deliver(room, queued, stored);
  }

  /** Acks are owed first (paid as each chat is published), then the entries go out in order. */
  private deliver(room: LocalRoom<C>, queued: Array<Queued<C>>, stored: boolean): void {
    const entries: RoomEntry[] = [];
    for (const q of queued) {
      if (q.kind !== "chat") {
        entries.push(q);
        continue;
      }
      const { msg, id } = q.chat;
      this.settleRef(q.chat, stored);
      if (!stored) {
        entries.push({ n: q.n, kind: "void" });
        for (const to of [q.chat.from, ...q.chat.dupes]) this.sink.failed(to, id);
        continue;
      }
      for (const to of [q.chat.from, ...q.chat.dupes]) this.sink.committed(to, room.name, id, msg.seq);
      entries.push({
        n: q.n,
        kind: "chat",
        msg: {
          type: "chat",
          room: msg.room,
          seq: msg.seq,
          nick: msg.nick,
          text: msg.text,
          sentAt: this.iso(msg.sentAt),
        },
      });
    }
    this.sink.deliver(room.name, entries);
    if (room.idle) this.rooms.delete(room.name);
  }

  /** A stored chat's reference keeps only its seq; a failed one is forgotten, so a retry is new. */
  private settleRef(chat: PendingChat<C>, stored: boolean): void {
    if (chat.id === undefined) return;
    const session = this.sessions.get(chat.msg.session);
    const key = sentKey(chat.msg.room, chat.id);
    const ref = session?.sent.get(key);
    if (!session || ref?.pending !== chat) return;
    if (stored) ref.pending = undefined;
    else session.sent.delete(key);
  }

  private append(room: LocalRoom<C>, entry: Unnumbered): number {
    const n = ++room.n;
    room.outbox.push({ ...entry, n });
    this.dirty.add(room);
    this.wake();
    return n;
  }

  private room(name: string): LocalRoom<C> {
    let room = this.rooms.get(name);
    if (!room) {
      room = new LocalRoom<C>(name, this.store.lastSeq(name));
      this.rooms.set(name, room);
    }
    return room;
  }

  private guestNick(room: LocalRoom<C>): string {
    let nick: string;
    do nick = `guest-${++this.guestCounter}`;
    while (room.claims.has(nickKey(nick)));
    return nick;
  }

  /** Makes sure a flush runs within `ms`. */
  private later(ms: number): void {
    const at = this.now() + ms;
    if (at >= this.timerAt) return;
    this.timerAt = at;
    this.timer(() => {
      if (this.timerAt <= this.now()) this.timerAt = Number.POSITIVE_INFINITY;
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

  private wake(): void {
    if (this.flushScheduled || this.stopped) return;
    this.flushScheduled = true;
    this.schedule(() => this.flush(false));
  }
}
