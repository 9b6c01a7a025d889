/**
 * The chat logic for several processes sharing one Redis, with ChatHub's public surface. Writes go
 * through Lua scripts (seq, nick claims, dedupe); what each process shows its clients comes only from
 * replaying the rooms' streams in order, so every member on every process sees one order.
 */
import type { RedisClient } from "bun";
import {
  type ChatRequest,
  CLOSE,
  type ClientMessage,
  type ConnectParams,
  decodeClientMessage,
  type ErrorCode,
  encode,
  LIMITS,
  nickKey,
  normalizeNick,
  normalizeRoom,
  PROTOCOL_VERSION,
  type PresenceEvent,
  type ServerMessage,
} from "../../protocol";
import { ConfigError } from "../config";
import { DEFAULT_HUB_LIMITS, type HubLimits } from "../hub";
import { describeError, type Logger, silentLogger } from "../log";
import { Metrics } from "../metrics";
import type { Fanout, Peer } from "../peer";
import { TokenBucket } from "../rate-limit";
import { randomToken } from "../session";
import { RedisHistory, roomKey } from "./redis-history";
import { connectRedis, runScript, streamIdAfter } from "./redis-link";
import { RoomView, type SnapshotReply } from "./room-view";
import { CHAT, CLAIM, HEARTBEAT, LEAVE, RENAME, SNAPSHOT, SWEEP, TYPING } from "./scripts";
import { entryFields, type StreamEntry, StreamReader } from "./stream-reader";

export interface RedisHubOptions {
  url: string;
  fanout: Fanout;
  limits?: Partial<HubLimits>;
  /** Key prefix, so several chats (or tests) can share one Redis. */
  prefix?: string;
  /** A process whose heartbeat is this old is dead: its users leave every room. */
  presenceTtlMs?: number;
  /** Stream entries kept per room (approximately): a reader further behind resyncs its clients. */
  streamMaxLen?: number;
  now?: () => number;
  schedule?: (fn: () => void) => void;
  log?: Logger;
  metrics?: Metrics;
  newId?: () => string;
}

export interface RedisOpenParams extends ConnectParams {
  fixedNick?: string;
}

type Frame = string | ArrayBuffer | ArrayBufferView;

/** Frames a connection may send while it waits for Redis (a claim, a rename) before it is closed. */
const MAX_DEFERRED = 256;
const CONTROL = new Set(["nick", "join", "history", "who"]);

export class RedisConnection {
  state: "pending" | "live" | "closed" = "pending";
  view: RoomView<RedisConnection> | null = null;
  nick = "";
  key = "";
  /** The resume token: the session in Redis. */
  session = "";
  /** Holds the users entry `key` in `view`. */
  claimed = false;
  subscribed: string | null = null;
  fixedNick: string | undefined;
  lastTypingAt = Number.NEGATIVE_INFINITY;
  strikes = 0;
  /** Waiting for Redis: later frames wait too, so they apply in the order they were sent. */
  busy = false;
  deferred: ClientMessage[] = [];
  lateAcks: Array<{ id: string; seq: number }> = [];
  readonly chatBucket: TokenBucket;
  readonly controlBucket: TokenBucket;
  readonly frameBucket: TokenBucket;

  constructor(
    readonly id: string,
    readonly peer: Peer,
    limits: HubLimits,
    now: number,
  ) {
    this.chatBucket = new TokenBucket(limits.rateLimit, limits.rateBurst, now);
    this.controlBucket = new TokenBucket(limits.controlRate, limits.controlBurst, now);
    this.frameBucket = new TokenBucket(limits.frameRate, limits.frameBurst, now);
  }
}

interface PendingChat {
  conn: RedisConnection;
  id: string | undefined;
  args: [string, string, string, string];
}

interface EnterOptions {
  since: number | undefined;
  resume?: string | undefined;
  /** Wanted nickname; undefined asks for a guest name. */
  wanted: string | undefined;
}

export class RedisHub {
  readonly metrics: Metrics;
  readonly limits: HubLimits;
  readonly history: RedisHistory;
  /** This process in Redis: its heartbeat key and the owner field of its users. */
  readonly procId: string;
  /** Resolves once Redis answered and this process registered; rejects if Redis is unreachable. */
  readonly ready: Promise<void>;
  private readonly client: RedisClient;
  private readonly fanout: Fanout;
  private readonly prefix: string;
  private readonly ttlMs: number;
  private readonly maxLen: string;
  private readonly now: () => number;
  private readonly schedule: (fn: () => void) => void;
  private readonly log: Logger;
  private readonly newId: () => string;
  private readonly views = new Map<string, RoomView<RedisConnection>>();
  private readonly connections = new Set<RedisConnection>();
  private readonly inflight = new Set<Promise<unknown>>();
  private pending = new Map<string, PendingChat[]>();
  private reader: StreamReader | undefined;
  private timers: Array<ReturnType<typeof setInterval>> = [];
  private flushScheduled = false;
  private stopping = false;
  private registered = false;
  /**
   * No sweeping before this time: after Redis was out of reach, every heartbeat may have expired, so
   * the first process back waits one expiry for the others to beat again before it calls anyone dead.
   */
  private sweepNotBefore = 0;

  constructor(options: RedisHubOptions) {
    this.fanout = options.fanout;
    this.limits = { ...DEFAULT_HUB_LIMITS, ...options.limits };
    this.prefix = options.prefix ?? "chat:";
    this.ttlMs = options.presenceTtlMs ?? 5000;
    this.maxLen = String(options.streamMaxLen ?? 10_000);
    this.now = options.now ?? Date.now;
    this.schedule = options.schedule ?? ((fn) => setTimeout(fn, 0));
    this.log = options.log ?? silentLogger;
    this.metrics = options.metrics ?? new Metrics();
    this.newId = options.newId ?? (() => crypto.randomUUID().replaceAll("-", "").slice(0, 16));
    this.procId = randomToken(9);
    this.client = connectRedis(options.url);
    this.history = new RedisHistory(this.client, this.prefix);
    this.ready = this.start();
    this.ready.catch(() => {});
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Rooms with members on this process, with their user counts across every process, busiest first. */
  roomList(): Array<{ room: string; users: number }> {
    const out: Array<{ room: string; users: number }> = [];
    for (const view of this.views.values()) {
      if (view.members.size > 0 && !view.broken) out.push({ room: view.name, users: view.users.size });
    }
    return out.sort((a, b) => b.users - a.users || (a.room < b.room ? -1 : 1));
  }

  /** A new connection; it gets its welcome once its nickname is claimed and its join replayed here. */
  open(peer: Peer, params: RedisOpenParams): RedisConnection {
    const conn = new RedisConnection(this.newId(), peer, this.limits, this.now());
    conn.fixedNick = params.fixedNick;
    conn.busy = true;
    this.connections.add(conn);
    this.track(
      this.enter(conn, normalizeRoom(params.room), {
        since: params.since,
        resume: params.resume,
        wanted: params.fixedNick ?? params.nick,
      }),
    );
    return conn;
  }

  /** Handles one frame; never throws, whatever the frame. */
  receive(conn: RedisConnection, frame: Frame): void {
    if (conn.state === "closed") return;
    this.metrics.messagesIn++;
    try {
      if (!this.admit(conn, conn.frameBucket)) return;
      const decoded = decodeClientMessage(frame);
      if (!decoded.ok) {
        this.fail(conn, decoded.error.code, decoded.error.message, decoded.error.id);
        return;
      }
      this.handle(conn, decoded.value);
    } catch (err) {
      this.log.log("error", "handler_failed", { conn: conn.id, ...describeError(err) });
      this.fail(conn, "internal", "the server failed to handle this message");
    }
  }

  close(conn: RedisConnection, code: number): void {
    this.metrics.close(code);
    if (conn.state === "closed") return;
    this.detach(conn, true);
  }

  /** Sends this turn's chats to Redis, one script per room; acks follow the replay of each message. */
  flush(): void {
    this.flushScheduled = false;
    if (this.pending.size === 0) return;
    const batches = this.pending;
    this.pending = new Map();
    for (const [room, batch] of batches) this.track(this.commit(room, batch));
  }

  /** Flushes, then closes every socket with 1001. */
  shutdown(): void {
    this.flush();
    this.stopping = true;
    for (const conn of [...this.connections]) {
      safely(() => conn.peer.close(CLOSE.goingAway, "server shutting down"), this.log);
    }
  }

  /** Sessions expire in Redis by themselves; this runs the dead-process sweep now. */
  sweep(): void {
    this.track(this.sweepDead());
  }

  /** After `shutdown`: waits for pending writes, removes this process from Redis and disconnects. */
  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    await this.settleWrites(3000);
    try {
      await this.ready;
      await runScript(this.client, SWEEP, [this.prefix, this.maxLen, this.limits.resumeTtlMs, this.procId]);
    } catch (err) {
      this.log.log("warn", "redis_retire_failed", describeError(err));
    }
    await this.reader?.stop();
    this.client.close();
  }

  /** For tests: resolves once nothing is in flight and every room view has replayed its whole stream. */
  async quiesce(): Promise<void> {
    for (let round = 0; ; round++) {
      this.flush();
      await this.settleWrites(10_000);
      let behind = false;
      for (const view of this.views.values()) {
        if (!view.loaded || view.broken) continue;
        const last = (await this.client.send("XREVRANGE", [
          roomKey(this.prefix, view.name, "log"),
          "+",
          "-",
          "COUNT",
          "1",
        ])) as StreamEntry[];
        const id = last[0]?.[0] ?? "0-0";
        if (streamIdAfter(id, view.lastId) || view.waiters.length > 0) behind = true;
      }
      if (!behind && this.inflight.size === 0 && !this.flushScheduled) return;
      if (round > 2000) throw new Error("redis hub never became quiet");
      await Bun.sleep(2);
    }
  }

  // ---- requests ----

  private handle(conn: RedisConnection, msg: ClientMessage): void {
    if (conn.busy) {
      if (conn.deferred.length >= MAX_DEFERRED) {
        safely(() => conn.peer.close(CLOSE.policy, "too many messages while waiting"), this.log);
        return;
      }
      conn.deferred.push(msg);
      return;
    }
    if (CONTROL.has(msg.type) && !this.admit(conn, conn.controlBucket)) return;
    if (msg.type !== "chat") conn.strikes = 0;
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
        this.track(this.historyPage(conn, msg.before, msg.limit ?? LIMITS.historyDefault));
        break;
      case "who": {
        const view = conn.view as RoomView<RedisConnection>;
        this.send(conn, { type: "users", room: view.name, users: view.sortedUsers() });
        break;
      }
      case "typing":
        this.typing(conn);
        break;
    }
  }

  private chat(conn: RedisConnection, msg: ChatRequest): void {
    if (!this.admit(conn, conn.chatBucket, msg.id)) return;
    conn.strikes = 0;
    const view = conn.view as RoomView<RedisConnection>;
    const sentAt = new Date(this.now()).toISOString();
    // The script puts the seq between head and tail: the stored JSON is exactly what clients get.
    const head = `{"type":"chat","room":${JSON.stringify(view.name)},"seq":`;
    const tail = `,"nick":${JSON.stringify(conn.nick)},"text":${JSON.stringify(msg.text)},"sentAt":"${sentAt}"}`;
    const batch = this.pending.get(view.name) ?? [];
    batch.push({ conn, id: msg.id, args: [conn.session, msg.id ?? "", head, tail] });
    this.pending.set(view.name, batch);
    this.wake();
  }

  private async commit(room: string, batch: PendingChat[]): Promise<void> {
    let seqs: number[];
    try {
      seqs = (await runScript(this.client, CHAT, [
        this.prefix,
        room,
        this.maxLen,
        this.limits.dedupeWindow,
        ...batch.flatMap((p) => p.args),
      ])) as number[];
      this.metrics.storeCommits++;
    } catch (err) {
      this.metrics.storeFailures++;
      this.log.log("error", "redis_commit_failed", { room, messages: batch.length, ...describeError(err) });
      for (const p of batch)
        this.fail(p.conn, "internal", "the message could not be stored; send it again", p.id);
      return;
    }
    batch.forEach((p, i) => {
      if (p.id !== undefined) this.ackAfterReplay(p.conn, room, p.id, Math.abs(seqs[i] ?? 0));
    });
  }

  /** An ack follows its chat: sent once this process has published that seq (or the welcome). */
  private ackAfterReplay(conn: RedisConnection, room: string, id: string, seq: number): void {
    if (conn.state === "closed") return;
    const view = conn.view;
    if (view && view.name === room && view.loaded && seq > view.lastSeq) {
      const owed = view.acks.get(seq) ?? [];
      owed.push({ conn, id });
      view.acks.set(seq, owed);
    } else this.ack(conn, id, seq);
  }

  private ack(conn: RedisConnection, id: string, seq: number): void {
    this.metrics.acks++;
    if (conn.state === "pending") conn.lateAcks.push({ id, seq });
    else this.send(conn, { type: "ack", id, seq });
  }

  private rename(conn: RedisConnection, nick: string): void {
    const view = conn.view as RoomView<RedisConnection>;
    if (conn.fixedNick !== undefined) {
      this.fail(conn, "forbidden", "your nickname is fixed by your access token");
      return;
    }
    if (nick === conn.nick) return;
    this.flush();
    conn.busy = true;
    const event: PresenceEvent = { event: "nick", from: conn.nick, nick };
    const work = async () => {
      try {
        const [outcome] = (await runScript(this.client, RENAME, [
          this.prefix,
          view.name,
          this.maxLen,
          conn.key,
          nickKey(nick),
          nick,
          conn.id,
          JSON.stringify(event),
        ])) as [string];
        if (outcome === "ok") {
          conn.nick = nick;
          conn.key = nickKey(nick);
        } else if (outcome === "taken")
          this.fail(conn, "nick_taken", `${nick} is already taken in ${view.name}`);
        else this.resyncOne(conn, "its nickname is no longer held in Redis");
      } catch (err) {
        this.log.log("error", "redis_rename_failed", { conn: conn.id, ...describeError(err) });
        this.fail(conn, "internal", "the nickname could not be changed; try again");
      }
      this.unblock(conn);
    };
    this.track(work());
  }

  private join(conn: RedisConnection, target: string, since: number | undefined): void {
    const current = conn.view as RoomView<RedisConnection>;
    if (target === current.name) {
      this.welcome(conn, current, since);
      return;
    }
    this.flush();
    conn.busy = true;
    this.leaveView(conn, false);
    conn.state = "pending";
    this.track(this.enter(conn, target, { since, wanted: conn.fixedNick ?? conn.nick }));
  }

  private typing(conn: RedisConnection): void {
    const view = conn.view as RoomView<RedisConnection>;
    const now = this.now();
    if (conn.state !== "live" || now - conn.lastTypingAt < LIMITS.typingIntervalMs) return;
    conn.lastTypingAt = now;
    this.flush();
    const data = encode({ type: "typing", room: view.name, nick: conn.nick });
    this.track(
      runScript(this.client, TYPING, [this.prefix, view.name, this.maxLen, conn.id, data]).catch((err) =>
        this.log.log("warn", "redis_typing_failed", describeError(err)),
      ),
    );
  }

  private async historyPage(conn: RedisConnection, before: number | undefined, limit: number): Promise<void> {
    const room = (conn.view as RoomView<RedisConnection>).name;
    try {
      const page = await this.history.before(room, before ?? Number.MAX_SAFE_INTEGER, limit);
      this.send(conn, { type: "history", room, messages: page.messages, hasMore: page.more });
    } catch (err) {
      this.log.log("error", "redis_history_failed", { room, ...describeError(err) });
      this.fail(conn, "internal", "could not read the room's history; try again");
    }
  }

  // ---- rooms: entering, leaving, welcomes ----

  /** Claims a nickname in `room` and schedules the welcome for when this process has replayed the claim. */
  private async enter(conn: RedisConnection, room: string, opts: EnterOptions): Promise<void> {
    const view = this.acquire(room);
    try {
      await view.ready;
      let token = conn.session;
      let wanted = opts.wanted;
      if (opts.resume !== undefined && token === "") {
        const [sRoom, sNick, sKey] = (await this.client.send("HMGET", [
          `${this.prefix}sess:${opts.resume}`,
          "room",
          "nick",
          "key",
        ])) as Array<string | null>;
        const fixedOk = conn.fixedNick === undefined || sKey === nickKey(conn.fixedNick);
        if (sRoom === room && sNick && fixedOk) {
          token = opts.resume;
          wanted = sNick;
        }
      }
      if (token === "") token = randomToken();
      let reply: [string, string?, string?] = ["full"];
      for (let skip = 0; reply[0] === "full" && skip < 4096; skip += CANDIDATES) {
        const pairs = wanted === undefined ? [] : candidates(wanted, skip).flat();
        reply = (await runScript(this.client, CLAIM, [
          this.prefix,
          room,
          this.maxLen,
          this.procId,
          conn.id,
          token,
          wanted === undefined ? "1" : "0",
          ...pairs,
        ])) as [string, string?, string?];
      }
      const [kind, nick = "", at = "0-0"] = reply;
      if (kind === "full") throw new Error(`no free variant of ${wanted}`);
      conn.session = token;
      conn.nick = nick;
      conn.key = nickKey(nick);
      if (conn.state === "closed" || view.broken) {
        // Gone while we waited: give the entry back (a leave event, since others may have seen the join).
        this.leaveLater(room, conn.key, conn.id, true);
        if (conn.state !== "closed") this.resyncOne(conn, "room replica went out of step");
        this.release(view);
        return;
      }
      conn.claimed = true;
      conn.view = view;
      view.members.set(conn.id, conn);
      this.at(view, at, () => this.welcome(conn, view, opts.since));
    } catch (err) {
      this.release(view);
      if (conn.state === "closed") return;
      this.log.log("error", "redis_enter_failed", { conn: conn.id, room, ...describeError(err) });
      this.detach(conn, true);
      safely(() => conn.peer.close(CLOSE.internal, "the chat store is unavailable; try again"), this.log);
    }
  }

  private welcome(conn: RedisConnection, view: RoomView<RedisConnection>, since: number | undefined): void {
    if (conn.state === "closed" || conn.view !== view) return;
    const page =
      since === undefined ? view.latest(LIMITS.welcomeHistory) : view.after(since, LIMITS.sinceMax);
    if (conn.subscribed !== view.topic) {
      safely(() => conn.peer.subscribe(view.topic), this.log);
      conn.subscribed = view.topic;
    }
    conn.state = "live";
    this.send(conn, {
      type: "welcome",
      protocol: PROTOCOL_VERSION,
      connectionId: conn.id,
      room: view.name,
      nick: conn.nick,
      users: view.sortedUsers(),
      history: page.messages,
      historyTruncated: page.more,
      lastSeq: view.lastSeq,
      resumeToken: conn.session,
    });
    const late = conn.lateAcks;
    conn.lateAcks = [];
    for (const { id, seq } of late) this.send(conn, { type: "ack", id, seq });
    this.unblock(conn);
  }

  /** Replays the frames that arrived while the connection waited, in order. */
  private unblock(conn: RedisConnection): void {
    if (conn.state === "closed") return;
    conn.busy = false;
    const frames = conn.deferred;
    conn.deferred = [];
    for (const msg of frames) {
      if ((conn.state as string) === "closed") return; // a replayed frame may have closed it
      try {
        this.handle(conn, msg);
      } catch (err) {
        this.log.log("error", "handler_failed", { conn: conn.id, ...describeError(err) });
      }
    }
  }

  /** Takes a connection out of its room for good. */
  private detach(conn: RedisConnection, ending: boolean): void {
    this.leaveView(conn, ending);
    conn.state = "closed";
    conn.busy = false;
    conn.deferred = [];
    this.connections.delete(conn);
  }

  /** Leaves the current room here at once, and in Redis as soon as it answers. */
  private leaveView(conn: RedisConnection, ending: boolean): void {
    const view = conn.view;
    if (!view) return;
    view.members.delete(conn.id);
    if (conn.subscribed) safely(() => conn.peer.unsubscribe(view.topic), this.log);
    conn.subscribed = null;
    conn.view = null;
    if (conn.claimed) {
      this.flush();
      this.leaveLater(view.name, conn.key, conn.id, ending);
    }
    conn.claimed = false;
    this.release(view);
  }

  /** Removes a users entry, retrying while Redis is away (a dead process's entries are swept instead). */
  private leaveLater(room: string, key: string, connId: string, ending: boolean): void {
    const work = async () => {
      for (let attempt = 0; attempt < 240; attempt++) {
        try {
          await runScript(this.client, LEAVE, [
            this.prefix,
            room,
            this.maxLen,
            key,
            connId,
            ending ? "1" : "0",
            this.limits.resumeTtlMs,
          ]);
          return;
        } catch (err) {
          if (attempt === 0) this.log.log("warn", "redis_leave_failed", { room, ...describeError(err) });
          await Bun.sleep(250);
        }
      }
    };
    this.track(work());
  }

  private acquire(room: string): RoomView<RedisConnection> {
    let view = this.views.get(room);
    if (!view || view.broken) {
      const fresh = new RoomView<RedisConnection>(room);
      fresh.ready = this.load(fresh);
      fresh.ready.catch(() => {});
      this.views.set(room, fresh);
      view = fresh;
    }
    view.holds++;
    return view;
  }

  private release(view: RoomView<RedisConnection>): void {
    view.holds--;
    if (view.holds <= 0 && this.views.get(view.name) === view) this.views.delete(view.name);
  }

  private async load(view: RoomView<RedisConnection>): Promise<void> {
    try {
      await this.ready;
      const reply = (await runScript(this.client, SNAPSHOT, [
        this.prefix,
        view.name,
        LIMITS.sinceMax,
      ])) as SnapshotReply;
      view.applySnapshot(reply);
      this.wakeReader();
    } catch (err) {
      view.broken = true;
      throw err;
    }
  }

  /** Runs `fn` once `view` has applied the stream entry `id` (at once if it already has). */
  private at(view: RoomView<RedisConnection>, id: string, fn: () => void): void {
    if (!streamIdAfter(id, view.lastId)) fn();
    else view.waiters.push({ at: id, run: fn });
  }

  // ---- replaying the streams ----

  private apply(key: string, entries: StreamEntry[]): void {
    const room = key.slice(this.prefix.length + "room:".length, -":log".length);
    const view = this.views.get(room);
    if (!view?.loaded || view.broken) return;
    let events: PresenceEvent[] = [];
    const flushEvents = () => {
      if (events.length === 0) return;
      this.publish(view, encode({ type: "presence", room, events }));
      events = [];
    };
    for (const [id, flat] of entries) {
      if (!streamIdAfter(id, view.lastId)) continue;
      const f = entryFields(flat);
      const n = Number(f.n);
      if (n !== view.lastN + 1) {
        flushEvents();
        this.resync(view, `entry ${n} follows ${view.lastN}: the stream was trimmed or reset`);
        return;
      }
      view.lastN = n;
      view.lastId = id;
      if (f.k === "p") {
        const event = JSON.parse(f.d as string) as PresenceEvent;
        view.applyPresence(event);
        events.push(event);
      } else {
        flushEvents();
        if (f.k === "c") {
          const seq = Number(f.s);
          if (seq !== view.lastSeq + 1) {
            this.resync(view, `seq ${seq} follows ${view.lastSeq}`);
            return;
          }
          view.applyChat(JSON.parse(f.d as string));
          this.publish(view, f.d as string);
          const owed = view.acks.get(seq);
          if (owed) {
            view.acks.delete(seq);
            for (const { conn, id: ref } of owed) if (conn.state !== "closed") this.ack(conn, ref, seq);
          }
        } else if (f.k === "r") {
          const stale = f.fp === this.procId ? view.members.get(f.f as string) : undefined;
          if (stale) this.replaced(stale);
        } else if (f.k === "t") {
          this.typingOut(view, f.c as string, f.d as string);
        }
      }
      if (view.waiters.length > 0) {
        flushEvents();
        const due = view.waiters.filter((w) => !streamIdAfter(w.at, id));
        view.waiters = view.waiters.filter((w) => streamIdAfter(w.at, id));
        for (const w of due) w.run();
      }
    }
    flushEvents();
    this.closeSlowReaders(view);
  }

  private typingOut(view: RoomView<RedisConnection>, from: string, data: string): void {
    if (view.members.size === 0) return;
    const typer = view.members.get(from);
    if (typer?.subscribed === view.topic) safely(() => typer.peer.publishOthers(view.topic, data), this.log);
    else this.fanout.publish(view.topic, data);
    this.metrics.messagesOut += view.members.size - (typer ? 1 : 0);
  }

  /** A resumed connection took this one's place (on any process): closed with 4001, no leave. */
  private replaced(stale: RedisConnection): void {
    stale.claimed = false;
    this.detach(stale, false);
    safely(() => stale.peer.close(CLOSE.replaced, "replaced by a resumed session"), this.log);
  }

  /** This process can no longer follow the room: its clients reconnect (with `since`) and get it all. */
  private resync(view: RoomView<RedisConnection>, why: string): void {
    this.log.log("warn", "redis_room_resync", { room: view.name, why });
    view.broken = true;
    view.waiters = [];
    view.acks.clear();
    if (this.views.get(view.name) === view) this.views.delete(view.name);
    for (const conn of [...view.members.values()]) this.resyncOne(conn, why);
  }

  private resyncOne(conn: RedisConnection, why: string): void {
    this.detach(conn, true);
    safely(
      () => conn.peer.close(CLOSE.internal, `out of step with the broker (${why}); reconnect with since`),
      this.log,
    );
  }

  private closeSlowReaders(view: RoomView<RedisConnection>): void {
    for (const conn of view.members.values()) {
      if (conn.state === "live" && conn.peer.bufferedAmount() > this.limits.slowConsumerBytes)
        this.dropSlowReader(conn);
    }
  }

  private dropSlowReader(conn: RedisConnection): void {
    this.log.log("warn", "slow_consumer_closed", { conn: conn.id, room: conn.view?.name });
    this.detach(conn, true);
    safely(() => conn.peer.close(CLOSE.policy, "too slow to keep up"), this.log);
  }

  // ---- process presence: heartbeat and sweeping the dead ----

  private async start(): Promise<void> {
    try {
      await this.client.connect();
    } catch (err) {
      throw new ConfigError("REDIS_URL", `cannot reach Redis: ${describeError(err).error}`);
    }
    await this.heartbeat();
    const reader = await this.client.duplicate();
    this.reader = new StreamReader(
      reader,
      `${this.prefix}proc:${this.procId}:wake`,
      {
        streams: () =>
          [...this.views.values()]
            .filter((v) => v.loaded && !v.broken)
            .map((v) => ({ key: roomKey(this.prefix, v.name, "log"), lastId: v.lastId })),
        apply: (key, entries) => this.apply(key, entries),
      },
      this.log,
    );
    this.reader.start();
    const beat = setInterval(
      () =>
        this.track(
          this.heartbeat().catch(() => {
            this.sweepNotBefore = Date.now() + this.ttlMs;
          }),
        ),
      Math.max(50, this.ttlMs / 3),
    );
    const sweep = setInterval(() => this.track(this.sweepDead()), Math.max(50, this.ttlMs / 5));
    beat.unref?.();
    sweep.unref?.();
    this.timers.push(beat, sweep);
  }

  private async heartbeat(): Promise<void> {
    const alive = await runScript(this.client, HEARTBEAT, [
      this.prefix,
      this.procId,
      this.ttlMs,
      this.registered ? "1" : "0",
    ]);
    if (alive === 1) {
      this.registered = true;
      return;
    }
    // Declared dead while Redis was out of reach: our users were removed; they must come back.
    this.log.log("warn", "redis_process_was_swept", { proc: this.procId });
    this.registered = false;
    for (const conn of [...this.connections]) {
      conn.claimed = false;
      this.resyncOne(conn, "this server was presumed dead");
    }
    await this.heartbeat();
  }

  private async sweepDead(): Promise<void> {
    if (Date.now() < this.sweepNotBefore) return;
    try {
      const removed = await runScript(this.client, SWEEP, [
        this.prefix,
        this.maxLen,
        this.limits.resumeTtlMs,
        "",
      ]);
      if (typeof removed === "number" && removed > 0)
        this.log.log("info", "redis_swept_dead_users", { removed });
    } catch {
      // Redis away: the next sweep tries again.
    }
  }

  private wakeReader(): void {
    const key = `${this.prefix}proc:${this.procId}:wake`;
    this.track(this.client.send("XADD", [key, "MAXLEN", "1", "*", "w", "1"]).catch(() => {}));
  }

  // ---- plumbing ----

  private publish(view: RoomView<RedisConnection>, data: string): void {
    if (view.members.size === 0) return;
    this.fanout.publish(view.topic, data);
    this.metrics.messagesOut += view.members.size;
  }

  private send(conn: RedisConnection, msg: ServerMessage): void {
    if (conn.state === "closed") return;
    let sent: number | undefined;
    safely(() => {
      sent = conn.peer.send(encode(msg));
    }, this.log);
    this.metrics.messagesOut++;
    if (sent === 0) this.dropSlowReader(conn);
  }

  private fail(conn: RedisConnection, code: ErrorCode, message: string, id?: string): void {
    this.metrics.error(code);
    this.send(
      conn,
      id === undefined ? { type: "error", code, message } : { type: "error", code, message, id },
    );
  }

  private admit(conn: RedisConnection, bucket: TokenBucket, id?: string): boolean {
    if (bucket.take(this.now())) return true;
    conn.strikes++;
    this.fail(conn, "rate_limited", "too many messages; slow down", id);
    if (conn.strikes >= this.limits.floodCloseAfter) {
      this.log.log("warn", "flood_closed", { conn: conn.id, room: conn.view?.name });
      safely(() => conn.peer.close(CLOSE.policy, "flooding"), this.log);
    }
    return false;
  }

  private wake(): void {
    if (this.flushScheduled || this.stopping) return;
    this.flushScheduled = true;
    this.schedule(() => this.flush());
  }

  private track(p: Promise<unknown>): void {
    const tracked = p.catch((err) => this.log.log("error", "redis_task_failed", describeError(err)));
    this.inflight.add(tracked);
    tracked.finally(() => this.inflight.delete(tracked));
  }

  private async settleWrites(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.inflight.size > 0 && Date.now() < deadline) {
      await Promise.race([Promise.all([...this.inflight]), Bun.sleep(Math.max(1, deadline - Date.now()))]);
    }
  }
}

const CANDIDATES = 16;

/** `nick`, `nick-2`, `nick-3`, ... (cut to the length limit), from the `skip`-th on, with their keys. */
function candidates(nick: string, skip: number): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = skip; i < skip + CANDIDATES; i++) {
    let name = nick;
    if (i > 0) {
      const suffix = `-${i + 1}`;
      name = [...nick].slice(0, LIMITS.nickMax - suffix.length).join("") + suffix;
    }
    out.push([nickKey(name), name]);
  }
  return out;
}

function safely(fn: () => void, log: Logger): void {
  try {
    fn();
  } catch (err) {
    log.log("warn", "peer_call_failed", describeError(err));
  }
}
