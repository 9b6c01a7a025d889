/**
 * The engine of one process: seqs from counters in memory, messages and sessions in a ChatStore
 * (SQLite or memory), nickname claims in a map. What a turn queues is written in one transaction at
 * the end of the turn, then delivered in order. Synchronous: every callback runs before it returns.
 */
import { firstFreeNick, LIMITS, nickKey, type PresenceEvent } from "../../../protocol";
import { monotonicNow } from "../../chat/clock";
import type {
  ChangeOutcome,
  ChangePage,
  ChangeRequest,
  Claim,
  Done,
  Engine,
  EngineConn,
  EngineSink,
  EnterRequest,
  Kick,
  Page,
  Post,
  PostMeta,
  RenameOutcome,
  RoomCount,
  RoomSnapshot,
  WelcomePages,
} from "../../chat/engine";
import { describeError, type Logger, silentLogger } from "../../chat/log";
import { Metrics } from "../../chat/metrics";
import { applyChange, changeMessage } from "../../chat/posts";
import type { Ban, UserStore } from "../../chat/users";
import { LocalRoom } from "./local-room";
import { LocalSessions, type PendingChat, sentKey } from "./local-sessions";
import { LocalUserClaims } from "./local-user-claims";
import { LocalWriter } from "./local-writer";
import type { ChatStore, StoredMessage } from "./store";

export interface LocalEngineDeps {
  store: ChatStore;
  resumeTtlMs: number;
  dedupeWindow: number;
  /** Resumable sessions one client address may hold (unlimited when absent). */
  maxSessionsPerClient?: number | undefined;
  now?: () => number;
  /** Runs the flush after the current turn; the server passes setImmediate. */
  schedule?: (fn: () => void) => void;
  /** Runs a flush later (session rows). */
  timer?: (fn: () => void, ms: number) => void;
  log?: Logger;
  metrics?: Metrics;
  /** Retention, applied by `sweep`: messages kept per room, and how old one may get; 0 keeps all. */
  retention?: { maxMessages: number; maxAgeMs: number };
}

/** Work one turn of a sweep's pruning may do (rows deleted, rooms looked at): ~15 ms on SQLite. */
const PRUNE_WORK = 500;

export class LocalEngine<C extends EngineConn> implements Engine<C> {
  readonly ready = Promise.resolve();
  readonly pages: WelcomePages = { page: (room, since, upTo) => this.welcomePage(room, since, upTo) };
  private sink!: EngineSink<C>;
  private readonly store: ChatStore;
  private readonly sessions: LocalSessions<C>;
  private readonly rooms = new Map<string, LocalRoom<C>>();
  /** For expiry (monotonic); `wallNow` stamps messages. Tests inject one clock for both. */
  private readonly now: () => number;
  private readonly wallNow: () => number;
  private readonly log: Logger;
  private readonly resumeTtlMs: number;
  private readonly writer: LocalWriter<C>;
  private readonly schedule: (fn: () => void) => void;
  private readonly retention: { maxMessages: number; maxAgeMs: number } | undefined;
  private pruning = false;
  private stopped = false;
  private guestCounter = 0;
  readonly users: UserStore;
  /** v2 users' sessions (for dedupe of their message ids): never resumable, never written as sessions. */
  private readonly userClaims: LocalUserClaims<C>;
  private readonly dedupeWindow: number;

  constructor(deps: LocalEngineDeps) {
    this.store = deps.store;
    this.sessions = new LocalSessions(deps.store, {
      window: deps.dedupeWindow,
      resumeTtlMs: deps.resumeTtlMs,
      maxPerClient: deps.maxSessionsPerClient ?? Number.POSITIVE_INFINITY,
    });
    this.resumeTtlMs = deps.resumeTtlMs;
    this.dedupeWindow = deps.dedupeWindow;
    this.users = this.makeUsers();
    this.now = deps.now ?? monotonicNow;
    this.wallNow = deps.now ?? Date.now;
    this.log = deps.log ?? silentLogger;
    this.schedule = deps.schedule ?? ((fn) => setTimeout(fn, 0));
    this.retention = deps.retention;
    this.writer = new LocalWriter<C>({
      store: deps.store,
      sessions: this.sessions,
      sink: () => this.sink,
      metrics: deps.metrics ?? new Metrics(),
      log: this.log,
      now: this.now,
      schedule: this.schedule,
      timer: deps.timer ?? ((fn, ms) => setTimeout(fn, ms)),
      delivered: (room) => {
        if (room.idle) this.rooms.delete(room.name);
      },
    });
    this.userClaims = new LocalUserClaims<C>({
      store: this.store,
      writer: this.writer,
      now: this.now,
      dedupeWindow: this.dedupeWindow,
    });
  }

  /** The store's tables; `publish` reaches this process's connections of the user at once. */
  private makeUsers(): UserStore {
    const t = this.store.users;
    return {
      identityKey: (done) => t.identityKey(done),
      create: (userId, nick, done) => t.create(userId, nick, done),
      load: (userId, done) => t.load(userId, done),
      nicks: (ids, done) => t.nicks(ids, done),
      revoke: (userId, done) => t.revoke(userId, done),
      rename: (userId, nick, done) => t.rename(userId, nick, done),
      join: (userId, m, max, done) => t.join(userId, m, max, done),
      part: (userId, room, done) => t.part(userId, room, done),
      read: (userId, room, seq, done) => t.read(userId, room, seq, done),
      counts: (userId, queries, cap, done) => {
        // Counted from storage: what this turn queued is written first.
        this.flush(false);
        t.counts(userId, queries, cap, done);
      },
      directRoom: (a, b, name, done) => t.directRoom(a, b, name, done),
      directPair: (room, done) => t.directPair(room, done),
      ban: (room, ban, done) => t.ban(room, ban, done),
      unban: (room, userId, done) => t.unban(room, userId, done),
      banned: (room, who, now, done) => t.banned(room, who, now, done),
      publish: (userId, event) => this.sink.user(userId, event),
    };
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
        epoch: this.store.epoch(),
        lastSeq: room.committedSeq,
        lastN: room.n,
        lastRev: room.committedRev,
        topic: this.store.roomMeta(name).topic,
        users: [...room.claims.values()].map((c) => c.nick),
        owners: new Map([...room.userClaims].map(([userId, c]) => [c.nick, userId])),
        recent: [],
      };
    } catch (err) {
      done(err);
      return;
    }
    done(undefined, snapshot);
  }

  /**
   * Seqs are gapless, so "after `since` up to `upTo`" is the newest `upTo - since` before `upTo + 1`.
   * A plain page is shared by every welcome at the same position (a join storm reads it once).
   */
  private welcomePage(name: string, since: number | undefined, upTo: number): Page {
    if (since === undefined) {
      const room = this.rooms.get(name);
      const cached = room?.latestPage;
      if (cached && cached.upTo === upTo) return cached.page;
      const page = this.store.before(name, upTo + 1, LIMITS.welcomeHistory);
      if (room) room.latestPage = { upTo, page };
      return page;
    }
    const missed = upTo - since;
    if (missed <= 0) return { messages: [], more: false };
    const limit = Math.min(missed, LIMITS.sinceMax);
    return { messages: this.store.before(name, upTo + 1, limit).messages, more: missed > limit };
  }

  unload(name: string): void {
    const room = this.rooms.get(name);
    if (!room) return;
    room.followed = false;
    if (room.idle) this.rooms.delete(name);
  }

  enter(conn: C, req: EnterRequest, done: Done<Claim>): void {
    if (req.user !== undefined) {
      let claim: Claim;
      try {
        claim = this.userClaims.enter(this.room(req.room), conn.id, req.user);
      } catch (err) {
        done(err);
        return;
      }
      done(undefined, claim);
      return;
    }
    let claim: Claim;
    try {
      const room = this.room(req.room);
      const now = this.now();
      const resumed = req.resume
        ? this.sessions.resumable(req.resume, room.name, now, req.fixedNick)
        : undefined;
      // A connection moving to another room keeps its session (and so its resume token).
      const own = conn.session === "" ? undefined : this.sessions.get(conn.session);
      const session = resumed ?? own ?? this.sessions.create(room.name, req.client ?? "");
      const held = resumed ? room.claims.get(nickKey(resumed.nick)) : undefined;
      let nick: string;
      let at: number;
      if (resumed && held && held.connId === resumed.connId && held.connId !== conn.id) {
        // The user never left: the new connection takes the nickname over without presence events.
        const stale = held.connId;
        held.connId = conn.id;
        nick = held.nick;
        at = this.writer.append(room, { kind: "replaced", conn: stale });
      } else {
        const wanted = resumed?.nick || req.wanted || this.guestNick(room);
        nick = firstFreeNick(wanted, (key) => room.claims.has(key));
        room.claims.set(nickKey(nick), { connId: conn.id, nick });
        at = this.writer.append(room, { kind: "presence", event: { event: "join", nick }, at: now });
      }
      // Every resume gets a new token: the one it came with stops working.
      if (resumed) this.sessions.rotate(resumed);
      session.connId = conn.id;
      session.endedAt = null;
      this.sessions.track(session, room.name, nick);
      this.writer.wake();
      claim = { nick, session: session.token, at };
    } catch (err) {
      done(err);
      return;
    }
    done(undefined, claim);
  }

  /** Only the claim's holder leaves; its session ends with it (as the Redis LEAVE script does). */
  leave(conn: C, name: string, ending: boolean): void {
    const room = this.rooms.get(name);
    if (room && conn.userId !== undefined) {
      this.userClaims.leave(room, conn.id, conn.userId);
      return;
    }
    const key = nickKey(conn.nick);
    const claim = room?.claims.get(key);
    if (!room || !claim || claim.connId !== conn.id) return;
    room.claims.delete(key);
    this.writer.append(room, {
      kind: "presence",
      event: { event: "leave", nick: claim.nick },
      at: this.now(),
    });
    const session = this.sessions.get(conn.session);
    if (ending && session && session.connId === conn.id) {
      this.sessions.end(session, this.now());
      this.writer.wake();
    }
  }

  chat(conn: C, name: string, text: string, id: string | undefined, meta?: PostMeta): void {
    const room = this.rooms.get(name);
    const session = meta ? this.userClaims.session(meta.userId, name) : this.sessions.get(conn.session);
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
      sentAt: this.wallNow(),
      session: session.sid,
      clientId: id ?? null,
    };
    if (meta) {
      msg.userId = meta.userId;
      if (meta.kind !== undefined) msg.kind = meta.kind;
      if (meta.replyTo !== undefined) msg.replyTo = meta.replyTo;
      if (meta.mentions !== undefined) msg.mentions = meta.mentions;
      if (meta.mentionIds !== undefined) msg.mentionIds = meta.mentionIds;
    }
    const chat: PendingChat<C> = { msg, from: conn, id, dupes: [], session, key };
    this.writer.appendChat(room, chat);
    if (key !== undefined) this.sessions.remember(session, key, { seq: msg.seq, pending: chat });
  }

  rename(conn: C, name: string, nick: string, done: Done<RenameOutcome>): void {
    const room = this.rooms.get(name);
    if (room && conn.userId !== undefined) {
      done(undefined, this.userClaims.rename(room, conn.userId, nick));
      return;
    }
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
    let banned: Ban | undefined;
    this.store.users.banned(name, { nickKey: newKey }, this.wallNow(), (err, ban) => {
      if (err === undefined || err === null) banned = ban;
    });
    if (banned) {
      done(undefined, "banned");
      return;
    }
    room.claims.delete(key);
    room.claims.set(newKey, { connId: conn.id, nick });
    const event: PresenceEvent = { event: "nick", from: claim.nick, nick };
    this.writer.append(room, { kind: "presence", event, at: this.now() });
    const session = this.sessions.get(conn.session);
    if (session) this.sessions.track(session, name, nick);
    done(undefined, "ok");
  }

  post(name: string, seq: number, done: Done<Post | undefined>): void {
    let post: Post | undefined;
    try {
      post = this.rooms.get(name)?.changed.get(seq) ?? this.store.post(name, seq);
    } catch (err) {
      done(err);
      return;
    }
    done(undefined, post);
  }

  /** Folds the change into the post as it stands (this turn's changes included) and queues both for the commit. */
  change(name: string, req: ChangeRequest, done: Done<ChangeOutcome>): void {
    let outcome: ChangeOutcome;
    try {
      const room = this.room(name);
      const at = new Date(this.wallNow()).toISOString();
      let post: Post | undefined;
      if (req.type !== "topic") {
        const applied = applyChange(room.changed.get(req.seq) ?? this.store.post(name, req.seq), req, at);
        if (!applied.ok) {
          done(undefined, applied);
          return;
        }
        post = applied.post;
        room.changed.set(req.seq, post);
      }
      const rev = room.nextRev++;
      this.writer.appendChange(room, { room: name, change: changeMessage(name, rev, req, at), post });
      outcome = { ok: true, rev };
    } catch (err) {
      done(err);
      return;
    }
    done(undefined, outcome);
  }

  changes(name: string, sinceRev: number, upTo: number, limit: number, done: Done<ChangePage>): void {
    let page: ChangePage;
    try {
      page = this.store.changes(name, sinceRev, upTo, limit);
    } catch (err) {
      done(err);
      return;
    }
    done(undefined, page);
  }

  kick(name: string, kick: Kick): void {
    const room = this.rooms.get(name);
    if (room) this.writer.append(room, { kind: "kick", ...kick });
  }

  typing(conn: C, name: string, wire: string): void {
    const room = this.rooms.get(name);
    if (room) this.writer.append(room, { kind: "typing", from: conn.id, wire });
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

  /** Writes what the turn queued in one transaction, then delivers it in order. */
  flush(force: boolean): void {
    this.writer.flush(force);
  }

  /** Forgets expired sessions, then applies retention, if any. */
  sweep(): void {
    try {
      this.sessions.sweep(this.now() - this.resumeTtlMs);
    } catch (err) {
      this.log.log("warn", "session_sweep_failed", describeError(err));
    }
    this.prune();
  }

  /**
   * Deletes what retention no longer keeps, a step of PRUNE_WORK a turn, so a big deletion (the
   * first sweep on a large database, or many rooms) does not hold the event loop. One pass at a time.
   */
  private prune(): void {
    const r = this.retention;
    if (!r || this.pruning || (r.maxMessages <= 0 && r.maxAgeMs <= 0)) return;
    const olderThan = r.maxAgeMs > 0 ? this.wallNow() - r.maxAgeMs : 0;
    this.pruning = true;
    let total = 0;
    const step = () => {
      if (this.stopped) {
        this.pruning = false;
        return;
      }
      let deleted: number;
      let done: boolean;
      try {
        ({ deleted, done } = this.store.pruneStep(r.maxMessages, olderThan, PRUNE_WORK));
      } catch (err) {
        this.pruning = false;
        this.log.log("warn", "prune_failed", { deleted: total, ...describeError(err) });
        return;
      }
      total += deleted;
      // A cached welcome page may hold messages that are gone now.
      if (deleted > 0) for (const room of this.rooms.values()) room.latestPage = undefined;
      if (!done) {
        this.schedule(step);
        return;
      }
      this.pruning = false;
      if (total > 0) this.log.log("info", "messages_pruned", { deleted: total });
    };
    step();
  }

  /** Writes what is left and closes the store: the engine owns it from construction on. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.writer.stop();
    this.stopped = true;
    this.store.close();
  }

  async quiesce(): Promise<void> {
    this.flush(false);
  }

  private room(name: string): LocalRoom<C> {
    let room = this.rooms.get(name);
    if (!room) {
      room = new LocalRoom<C>(name, this.store.lastSeq(name), this.store.roomMeta(name).lastRev);
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
}
