/**
 * The chat logic: connections, rooms, nicknames, presence, sequence numbers, dedupe and resume.
 * Free of Bun, so a model test can drive it without sockets; server.ts only translates.
 */
import {
  type ChatRequest,
  CLOSE,
  type ConnectParams,
  decodeClientMessage,
  type ErrorCode,
  encode,
  firstFreeNick,
  LIMITS,
  nickKey,
  normalizeNick,
  normalizeRoom,
  PROTOCOL_VERSION,
  type PresenceEvent,
  type ServerMessage,
} from "../protocol";
import { describeError, type Logger, silentLogger } from "./log";
import { Metrics } from "./metrics";
import { type Fanout, type Peer, safely } from "./peer";
import { ConnectionLimits, type Gate, gateOf, type RateLimits } from "./rate-limit";
import { type Member, type Outgoing, Room } from "./room";
import { randomToken, remember, type Session, sentKey } from "./session";
import type { ChatStore, Page, SessionRecord, StoredMessage } from "./store";

export interface HubLimits extends RateLimits {
  /** Bytes a socket may have unsent after a flush before it is closed with 1008 as too slow. */
  slowConsumerBytes: number;
  /**
   * In a room of at least `presenceBatchMinMembers`, presence events (and the welcomes that follow
   * them) wait up to this long to share one message: a join storm then costs one send per member
   * per window instead of one per join. 0 sends them every turn. Chats are never held.
   */
  presenceBatchMs: number;
  presenceBatchMinMembers: number;
  /** How long a resume token stays valid after its connection ends. */
  resumeTtlMs: number;
  /** Client message references remembered per session for dedupe. */
  dedupeWindow: number;
}

export const DEFAULT_HUB_LIMITS: HubLimits = {
  rateLimit: 10,
  rateBurst: 20,
  controlRate: 5,
  controlBurst: 20,
  frameRate: 100,
  frameBurst: 200,
  floodCloseAfter: 50,
  slowConsumerBytes: 8 * 1024 * 1024,
  presenceBatchMs: 25,
  presenceBatchMinMembers: 50,
  resumeTtlMs: 15 * 60_000,
  dedupeWindow: 1000,
};

export interface HubDeps {
  store: ChatStore;
  fanout: Fanout;
  limits?: Partial<HubLimits>;
  now?: () => number;
  /** Runs the flush after the current turn; the server passes setImmediate. */
  schedule?: (fn: () => void) => void;
  /** Runs a flush later, for presence held back in a big room. */
  timer?: (fn: () => void, ms: number) => void;
  log?: Logger;
  metrics?: Metrics;
  newId?: () => string;
}

export interface OpenParams extends ConnectParams {
  /** Nickname fixed by an access token: taken on connect, never changed with `nick`. */
  fixedNick?: string;
}

export type ChatItem = Extract<Outgoing<Connection>, { kind: "chat" }>;

/**
 * How often a busy room's members are checked for backlog. Between checks Bun's own limit (set well
 * above ours) and the dropped-publish check in server.ts stand guard, so nothing is lost silently.
 */
const SLOW_CHECK_INTERVAL_MS = 50;

/** Longest a session change (new connection, rename, end) waits to be written when no message goes. */
const SESSION_WRITE_MS = 250;

export class Connection implements Member {
  /** pending: waiting for its welcome at the next flush; live: subscribed to its room. */
  state: "pending" | "live" | "closed" = "pending";
  room: Room<Connection> | null = null;
  nick = "";
  fixedNick: string | undefined;
  lastTypingAt = Number.NEGATIVE_INFINITY;
  readonly limits: ConnectionLimits;

  constructor(
    readonly id: string,
    readonly peer: Peer,
    public session: Session<Connection>,
    limits: HubLimits,
    now: number,
  ) {
    this.limits = new ConnectionLimits(limits, now);
  }
}

export class ChatHub {
  readonly metrics: Metrics;
  readonly limits: HubLimits;
  private readonly store: ChatStore;
  private readonly fanout: Fanout;
  private readonly now: () => number;
  private readonly schedule: (fn: () => void) => void;
  private readonly timer: (fn: () => void, ms: number) => void;
  /** When the pending delayed flush runs; +Infinity when none is set. */
  private timerAt = Number.POSITIVE_INFINITY;
  private sessionsWrittenAt = Number.NEGATIVE_INFINITY;
  private readonly log: Logger;
  private readonly newId: () => string;

  private readonly rooms = new Map<string, Room<Connection>>();
  private readonly connections = new Set<Connection>();
  private readonly sessions = new Map<string, Session<Connection>>();
  private readonly dirtyRooms = new Set<Room<Connection>>();
  private readonly dirtySessions = new Set<Session<Connection>>();
  /**
   * Welcomes owed at the next flush, in request order, with the `since` each asked for: two joins in
   * one turn get two welcomes. One for a room the connection has left since is skipped.
   */
  private welcomes: Array<{ conn: Connection; room: Room<Connection>; since: number | undefined }> = [];
  /** Acks owed to connections still waiting for their welcome: sent after it, as it carries their chat. */
  private lateAcks: Array<{ to: Connection; id: string; seq: number }> = [];
  private flushScheduled = false;
  private stopping = false;
  private guestCounter = 0;
  private isoMs = Number.NaN;
  private isoText = "";

  constructor(deps: HubDeps) {
    this.store = deps.store;
    this.fanout = deps.fanout;
    this.limits = { ...DEFAULT_HUB_LIMITS, ...deps.limits };
    this.now = deps.now ?? Date.now;
    this.schedule = deps.schedule ?? ((fn) => setTimeout(fn, 0));
    this.timer = deps.timer ?? ((fn, ms) => setTimeout(fn, ms));
    this.log = deps.log ?? silentLogger;
    this.metrics = deps.metrics ?? new Metrics();
    this.newId = deps.newId ?? (() => crypto.randomUUID().replaceAll("-", "").slice(0, 16));
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Rooms with members, busiest first. */
  roomList(): Array<{ room: string; users: number }> {
    const out: Array<{ room: string; users: number }> = [];
    for (const room of this.rooms.values()) {
      if (room.members.size > 0) out.push({ room: room.name, users: room.members.size });
    }
    return out.sort((a, b) => b.users - a.users || (a.room < b.room ? -1 : 1));
  }

  /** A new connection in `params.room`; its welcome goes out at the next flush. */
  open(peer: Peer, params: OpenParams): Connection {
    const now = this.now();
    const room = this.room(normalizeRoom(params.room));
    const resumed = params.resume ? this.resumable(params.resume, room.name, params.fixedNick) : undefined;
    const session = resumed ?? this.newSession(room.name);
    const conn = new Connection(this.newId(), peer, session, this.limits, now);
    conn.fixedNick = params.fixedNick;
    const stale = session.conn;
    if (stale && stale.state !== "closed" && stale.room === room) {
      // The user never left: the new connection takes the nickname over without presence events.
      room.remove(stale);
      stale.state = "closed";
      stale.room = null;
      this.connections.delete(stale);
      conn.nick = stale.nick;
      safely(() => stale.peer.close(CLOSE.replaced, "replaced by a resumed session"), this.log);
    } else {
      const wanted = resumed?.nick ?? params.fixedNick ?? params.nick ?? this.guestNick(room);
      conn.nick = firstFreeNick(wanted, (key) => room.isTaken(key));
      this.presence(room, { event: "join", nick: conn.nick });
    }
    conn.room = room;
    room.add(conn);
    session.conn = conn;
    session.endedAt = null;
    this.track(session, room.name, conn.nick);
    this.connections.add(conn);
    this.welcomes.push({ conn, room, since: params.since });
    this.wake();
    return conn;
  }

  /** Handles one frame; never throws, whatever the frame. */
  receive(conn: Connection, frame: string | ArrayBuffer | ArrayBufferView): void {
    if (conn.state === "closed") return;
    this.metrics.messagesIn++;
    try {
      if (!this.admit(conn, "frame")) return;
      const decoded = decodeClientMessage(frame);
      if (!decoded.ok) {
        this.fail(conn, decoded.error.code, decoded.error.message, decoded.error.id);
        return;
      }
      const msg = decoded.value;
      const gate = gateOf(msg.type);
      if (gate === "control" && !this.admit(conn, gate)) return;
      if (gate !== "chat") conn.limits.passed();
      switch (msg.type) {
        case "chat":
          this.chat(conn, msg);
          break;
        case "nick":
          this.rename(conn, normalizeNick(msg.nick));
          break;
        case "join":
          this.join(conn, normalizeRoom(msg.room), msg.since);
          break;
        case "history":
          this.history(conn, msg.before, msg.limit ?? LIMITS.historyDefault);
          break;
        case "who":
          this.who(conn);
          break;
        case "typing":
          this.typing(conn);
          break;
      }
    } catch (err) {
      this.log.log("error", "handler_failed", { conn: conn.id, ...describeError(err) });
      this.fail(conn, "internal", "the server failed to handle this message");
    }
  }

  /** The socket is gone: the user leaves the room unless a resumed connection replaced it. */
  close(conn: Connection, code: number): void {
    this.metrics.close(code);
    if (conn.state === "closed") return;
    this.detach(conn);
  }

  /**
   * Commits what this turn queued in one transaction, then publishes it in order and sends acks
   * and welcomes. Nothing is published before it is stored.
   */
  flush(force = false): void {
    this.flushScheduled = false;
    try {
      this.flushRooms(force);
      this.flushWelcomes();
      this.flushLateAcks();
    } catch (err) {
      this.log.log("error", "flush_failed", describeError(err));
    }
  }

  /** Flushes what is pending, then closes every socket with 1001. */
  shutdown(): void {
    this.flush(true);
    this.stopping = true;
    for (const conn of [...this.connections]) {
      safely(() => conn.peer.close(CLOSE.goingAway, "server shutting down"), this.log);
    }
  }

  /** Forgets sessions whose resume window has passed. */
  sweep(): void {
    const cutoff = this.now() - this.limits.resumeTtlMs;
    for (const [id, s] of this.sessions) {
      if (!s.conn && s.endedAt !== null && s.endedAt < cutoff && !this.dirtySessions.has(s)) {
        this.sessions.delete(id);
      }
    }
    try {
      this.store.dropSessions(cutoff);
    } catch (err) {
      this.log.log("warn", "session_sweep_failed", describeError(err));
    }
  }

  private chat(conn: Connection, msg: ChatRequest): void {
    const room = conn.room as Room<Connection>;
    const session = conn.session;
    const key = msg.id === undefined ? undefined : sentKey(room.name, msg.id);
    const seen = key === undefined ? undefined : session.sent.get(key);
    if (seen && msg.id !== undefined) {
      // A retry: never stored twice; the original ack goes out again (after its commit if pending).
      if (seen.item) seen.item.dupes.push(conn);
      else this.ack(conn, msg.id, seen.seq);
      return;
    }
    if (!this.admit(conn, "chat", msg.id)) return;
    conn.limits.passed();
    const stored: StoredMessage = {
      room: room.name,
      seq: room.nextSeq++,
      nick: conn.nick,
      text: msg.text,
      sentAt: this.now(),
      session: session.id,
      clientId: msg.id ?? null,
    };
    const item: ChatItem = { kind: "chat", msg: stored, from: conn, dupes: [] };
    if (msg.id !== undefined) item.id = msg.id;
    if (room.outbox.length === 0) room.outboxSince = this.now();
    room.outbox.push(item);
    this.dirtyRooms.add(room);
    if (key !== undefined) remember(session, key, { seq: stored.seq, item }, this.limits.dedupeWindow);
    this.wake();
  }

  /**
   * Takes a token from `bucket`, or answers `rate_limited`; a connection that keeps going past
   * the limit is closed with 1008.
   */
  private admit(conn: Connection, gate: Gate, id?: string): boolean {
    const verdict = conn.limits.take(gate, this.now());
    if (verdict === "ok") return true;
    this.fail(conn, "rate_limited", "too many messages; slow down", id);
    if (verdict === "flooding") {
      this.log.log("warn", "flood_closed", { conn: conn.id, room: conn.room?.name });
      safely(() => conn.peer.close(CLOSE.policy, "flooding"), this.log);
    }
    return false;
  }

  private rename(conn: Connection, nick: string): void {
    const room = conn.room as Room<Connection>;
    if (conn.fixedNick !== undefined) {
      this.fail(conn, "forbidden", "your nickname is fixed by your access token");
      return;
    }
    if (nick === conn.nick) return;
    const holder = room.members.get(nickKey(nick));
    if (holder && holder !== conn) {
      this.fail(conn, "nick_taken", `${nick} is already taken in ${room.name}`);
      return;
    }
    const from = conn.nick;
    room.rename(conn, nick);
    this.presence(room, { event: "nick", from, nick });
    this.track(conn.session, room.name, nick);
  }

  private join(conn: Connection, target: string, since: number | undefined): void {
    const current = conn.room as Room<Connection>;
    if (target === current.name) {
      this.welcomes.push({ conn, room: current, since });
      this.wake();
      return;
    }
    // Looked up first: if storage cannot open the room, the connection stays where it was.
    const room = this.room(target);
    this.leave(conn, current);
    conn.nick = firstFreeNick(conn.fixedNick ?? conn.nick, (key) => room.isTaken(key));
    conn.room = room;
    conn.state = "pending";
    room.add(conn);
    this.presence(room, { event: "join", nick: conn.nick });
    this.track(conn.session, room.name, conn.nick);
    this.welcomes.push({ conn, room, since });
    this.wake();
  }

  private history(conn: Connection, before: number | undefined, limit: number): void {
    const room = conn.room as Room<Connection>;
    const page = this.store.before(room.name, before ?? Number.MAX_SAFE_INTEGER, limit);
    this.send(conn, { type: "history", room: room.name, messages: page.messages, hasMore: page.more });
  }

  private who(conn: Connection): void {
    const room = conn.room as Room<Connection>;
    this.send(conn, { type: "users", room: room.name, users: room.users() });
  }

  private typing(conn: Connection): void {
    const room = conn.room as Room<Connection>;
    const now = this.now();
    if (conn.state !== "live" || now - conn.lastTypingAt < LIMITS.typingIntervalMs) return;
    conn.lastTypingAt = now;
    const data = encode({ type: "typing", room: room.name, nick: conn.nick });
    conn.peer.publishOthers(room.topic, data);
    this.metrics.messagesOut += room.members.size - 1;
  }

  /** Takes a connection out of its room and its session for good. */
  private detach(conn: Connection): void {
    if (conn.room) this.leave(conn, conn.room);
    conn.room = null;
    conn.state = "closed";
    this.connections.delete(conn);
    const session = conn.session;
    if (session.conn === conn) {
      session.conn = null;
      session.endedAt = this.now();
      this.dirtySessions.add(session);
      this.wake();
    }
  }

  private leave(conn: Connection, room: Room<Connection>): void {
    room.remove(conn);
    safely(() => conn.peer.unsubscribe(room.topic), this.log);
    this.presence(room, { event: "leave", nick: conn.nick });
  }

  private presence(room: Room<Connection>, event: PresenceEvent): void {
    if (room.outbox.length === 0) room.outboxSince = this.now();
    room.outbox.push({ kind: "presence", event });
    this.dirtyRooms.add(room);
    this.wake();
  }

  private flushRooms(force: boolean): void {
    if (this.dirtyRooms.size === 0 && this.dirtySessions.size === 0) return;
    const rooms: Array<Room<Connection>> = [];
    let wait = Number.POSITIVE_INFINITY;
    for (const room of this.dirtyRooms) {
      const left = force ? 0 : this.holdFor(room);
      room.held = left > 0;
      if (room.held) wait = Math.min(wait, left);
      else rooms.push(room);
    }
    for (const room of rooms) this.dirtyRooms.delete(room);
    if (wait !== Number.POSITIVE_INFINITY) this.later(wait);
    const messages: StoredMessage[] = [];
    for (const room of rooms) {
      for (const item of room.outbox) if (item.kind === "chat") messages.push(item.msg);
    }
    // Session rows ride along with messages, or go every SESSION_WRITE_MS: a join storm then costs
    // one transaction per interval, not one per join. A crash may forget only the newest sessions.
    const now = this.now();
    const sinceWrite = now - this.sessionsWrittenAt;
    const writeSessions = messages.length > 0 || force || sinceWrite >= SESSION_WRITE_MS;
    if (!writeSessions && this.dirtySessions.size > 0) this.later(SESSION_WRITE_MS - sinceWrite);
    const sessions = writeSessions ? [...this.dirtySessions] : [];
    if (messages.length === 0 && sessions.length === 0) {
      for (const room of rooms) this.publishOutbox(room, true);
      return;
    }
    let stored = true;
    try {
      this.store.commit(messages, sessions.map(toRecord));
      this.metrics.storeCommits++;
      for (const s of sessions) this.dirtySessions.delete(s);
      this.sessionsWrittenAt = now;
    } catch (err) {
      stored = false;
      this.metrics.storeFailures++;
      this.log.log("error", "store_commit_failed", { messages: messages.length, ...describeError(err) });
    }
    for (const room of rooms) this.publishOutbox(room, stored);
  }

  /** Makes sure a flush runs within `ms`. */
  private later(ms: number): void {
    const at = this.now() + ms;
    if (at >= this.timerAt) return;
    this.timerAt = at;
    this.timer(() => {
      if (this.timerAt <= this.now()) this.timerAt = Number.POSITIVE_INFINITY;
      this.flush();
    }, ms);
  }

  /** How much longer a big room's presence-only outbox may wait to be joined by more; 0 for now. */
  private holdFor(room: Room<Connection>): number {
    const { presenceBatchMs, presenceBatchMinMembers } = this.limits;
    if (presenceBatchMs <= 0 || room.members.size < presenceBatchMinMembers) return 0;
    if (room.outbox.some((item) => item.kind !== "presence")) return 0;
    return Math.max(0, room.outboxSince + presenceBatchMs - this.now());
  }

  /** Sends a room's queue in order; consecutive presence events share one message. */
  private publishOutbox(room: Room<Connection>, stored: boolean): void {
    if (stored) room.committedSeq = room.nextSeq - 1;
    else room.nextSeq = room.committedSeq + 1; // nothing of this batch was seen: its seqs are reused
    const outbox = room.outbox;
    room.outbox = [];
    let events: PresenceEvent[] = [];
    const publishEvents = () => {
      if (events.length === 0) return;
      this.publish(room, { type: "presence", room: room.name, events });
      events = [];
    };
    for (const item of outbox) {
      if (item.kind === "presence") {
        events.push(item.event);
        continue;
      }
      publishEvents();
      this.settle(room, item, stored);
    }
    publishEvents();
    if (outbox.length > 0 && this.now() - room.slowCheckAt >= SLOW_CHECK_INTERVAL_MS) {
      room.slowCheckAt = this.now();
      this.closeSlowReaders(room);
    }
    if (room.idle) this.rooms.delete(room.name);
  }

  /**
   * Past Bun's backpressure limit frames would be dropped silently, leaving a gap: a reader this far
   * behind is closed with 1008 first, and can come back with `since`. The others are not slowed.
   */
  private closeSlowReaders(room: Room<Connection>): void {
    for (const conn of room.members.values()) {
      if (conn.state === "live" && conn.peer.bufferedAmount() > this.limits.slowConsumerBytes) {
        this.dropSlowReader(conn);
      }
    }
  }

  private dropSlowReader(conn: Connection): void {
    this.log.log("warn", "slow_consumer_closed", { conn: conn.id, room: conn.room?.name });
    this.detach(conn);
    safely(() => conn.peer.close(CLOSE.policy, "too slow to keep up"), this.log);
  }

  private settle(room: Room<Connection>, item: ChatItem, stored: boolean): void {
    const { msg, id } = item;
    const session = item.from.session;
    if (stored) {
      this.publish(room, {
        type: "chat",
        room: msg.room,
        seq: msg.seq,
        nick: msg.nick,
        text: msg.text,
        sentAt: this.iso(msg.sentAt),
      });
      if (id === undefined) return;
      const ref = session.sent.get(sentKey(room.name, id));
      if (ref?.item === item) ref.item = undefined;
      for (const to of [item.from, ...item.dupes]) {
        this.ack(to, id, msg.seq);
        this.metrics.acks++;
      }
      return;
    }
    if (id !== undefined) {
      const key = sentKey(room.name, id);
      if (session.sent.get(key)?.item === item) session.sent.delete(key);
    }
    for (const to of [item.from, ...item.dupes]) {
      this.fail(to, "internal", "the message could not be stored; send it again", id);
    }
  }

  private flushWelcomes(): void {
    if (this.welcomes.length === 0) return;
    const due = this.welcomes;
    this.welcomes = [];
    const recent = new Map<Room<Connection>, Page>();
    for (const { conn, room, since } of due) {
      // A closed connection (state "closed") or one that moved on is owed nothing.
      if (conn.state === "closed" || conn.room !== room) continue;
      // Its room's presence is held back: the welcome must not overtake the events before it.
      if (room.held) {
        this.welcomes.push({ conn, room, since });
        continue;
      }
      try {
        let page: Page;
        if (since === undefined) {
          page =
            recent.get(room) ?? this.store.before(room.name, room.committedSeq + 1, LIMITS.welcomeHistory);
          recent.set(room, page);
        } else {
          page = this.store.after(room.name, since, LIMITS.sinceMax);
        }
        if (conn.state === "pending") conn.peer.subscribe(room.topic);
        conn.state = "live";
        this.send(conn, {
          type: "welcome",
          protocol: PROTOCOL_VERSION,
          connectionId: conn.id,
          room: room.name,
          nick: conn.nick,
          users: room.users(),
          history: page.messages,
          historyTruncated: page.more,
          lastSeq: room.committedSeq,
          resumeToken: conn.session.id,
        });
      } catch (err) {
        this.log.log("error", "welcome_failed", { conn: conn.id, ...describeError(err) });
        safely(() => conn.peer.close(CLOSE.internal, "could not read the room's history"), this.log);
      }
    }
  }

  /** An ack follows its chat: a connection that has not had its welcome yet gets it after that welcome. */
  private ack(to: Connection, id: string, seq: number): void {
    if (to.state !== "pending") {
      this.send(to, { type: "ack", id, seq });
      return;
    }
    this.lateAcks.push({ to, id, seq });
    this.wake();
  }

  private flushLateAcks(): void {
    if (this.lateAcks.length === 0) return;
    const due = this.lateAcks;
    this.lateAcks = [];
    for (const late of due) {
      if (late.to.state === "pending") this.lateAcks.push(late);
      else this.send(late.to, { type: "ack", id: late.id, seq: late.seq });
    }
  }

  private room(name: string): Room<Connection> {
    let room = this.rooms.get(name);
    if (!room) {
      room = new Room<Connection>(name, this.store.lastSeq(name));
      this.rooms.set(name, room);
    }
    return room;
  }

  private resumable(token: string, room: string, fixedNick?: string): Session<Connection> | undefined {
    let session = this.sessions.get(token);
    if (!session) {
      const record = this.store.loadSession(token);
      if (!record) return undefined;
      session = {
        ...record,
        endedAt: record.endedAt ?? this.now(),
        conn: null,
        sent: new Map(),
      };
      const ids = this.store.recentClientIds(token, record.room, this.limits.dedupeWindow);
      for (let i = ids.length - 1; i >= 0; i--) {
        const [id, seq] = ids[i] as [string, number];
        session.sent.set(sentKey(record.room, id), { seq });
      }
      this.sessions.set(token, session);
    }
    if (session.room !== room) return undefined;
    if (!session.conn && this.now() - (session.endedAt ?? 0) > this.limits.resumeTtlMs) return undefined;
    if (fixedNick !== undefined && nickKey(session.nick) !== nickKey(fixedNick)) return undefined;
    return session;
  }

  private newSession(room: string): Session<Connection> {
    const session: Session<Connection> = {
      id: randomToken(),
      room,
      nick: "",
      conn: null,
      endedAt: null,
      sent: new Map(),
    };
    this.sessions.set(session.id, session);
    return session;
  }

  private track(session: Session<Connection>, room: string, nick: string): void {
    session.room = room;
    session.nick = nick;
    this.dirtySessions.add(session);
    this.wake();
  }

  private guestNick(room: Room<Connection>): string {
    let nick: string;
    do nick = `guest-${++this.guestCounter}`;
    while (room.isTaken(nickKey(nick)));
    return nick;
  }

  private publish(room: Room<Connection>, msg: ServerMessage): void {
    if (room.members.size === 0) return;
    this.fanout.publish(room.topic, encode(msg));
    this.metrics.messagesOut += room.members.size;
  }

  private send(conn: Connection, msg: ServerMessage): void {
    if (conn.state === "closed") return;
    let sent: number | undefined;
    safely(() => {
      sent = conn.peer.send(encode(msg));
    }, this.log);
    this.metrics.messagesOut++;
    // 0: the socket dropped the frame (past its backpressure limit); never leave a silent gap.
    if (sent === 0) this.dropSlowReader(conn);
  }

  private fail(conn: Connection, code: ErrorCode, message: string, id?: string): void {
    this.metrics.error(code);
    this.send(
      conn,
      id === undefined ? { type: "error", code, message } : { type: "error", code, message, id },
    );
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
    if (this.flushScheduled || this.stopping) return;
    this.flushScheduled = true;
    this.schedule(() => this.flush());
  }
}

function toRecord(s: Session<Connection>): SessionRecord {
  return { id: s.id, room: s.room, nick: s.nick, endedAt: s.endedAt };
}
