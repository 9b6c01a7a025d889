/**
 * The chat logic for several processes sharing one Redis, with ChatHub's public surface. Writes go
 * through Lua scripts (seq, nick claims, dedupe); what each process shows its clients comes only from
 * replaying the rooms' streams in order, so every member on every process sees one order. This class
 * wires the parts together and hands each client frame to the part that serves it.
 */
import type { RedisClient } from "bun";
import {
  CLOSE,
  type ClientMessage,
  decodeClientMessage,
  LIMITS,
  normalizeNick,
  normalizeRoom,
} from "../../protocol";
import type { RoomCount } from "../chat-service";
import { ConfigError } from "../config";
import { DEFAULT_HUB_LIMITS, type HubLimits } from "../hub";
import { describeError, type Logger, silentLogger } from "../log";
import { Metrics } from "../metrics";
import type { Fanout, Peer } from "../peer";
import { gateOf } from "../rate-limit";
import { randomToken } from "../session";
import { ChatBatch } from "./chat-batch";
import { Connections } from "./connections";
import { Inflight } from "./inflight";
import { ProcessPresence } from "./process-presence";
import { RedisConnection, type RedisOpenParams } from "./redis-connection";
import { RedisHistory } from "./redis-history";
import { connectRedis } from "./redis-link";
import { RoomEntry } from "./room-entry";
import { clusterRooms } from "./room-list";
import { RoomRequests } from "./room-requests";
import { RoomScripts } from "./room-scripts";
import { RoomViews, type View } from "./room-views";
import { StreamReplay } from "./stream-replay";

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

type Frame = string | ArrayBuffer | ArrayBufferView;

/** Frames a connection may send while it waits for Redis (a claim, a rename) before it is closed. */
const MAX_DEFERRED = 256;

export class RedisHub {
  readonly metrics: Metrics;
  readonly limits: HubLimits;
  readonly history: RedisHistory;
  /** This process in Redis: its heartbeat key and the owner field of its users. */
  readonly procId = randomToken(9);
  /** Resolves once Redis answered and this process registered; rejects if Redis is unreachable. */
  readonly ready: Promise<void>;
  private readonly client: RedisClient;
  private readonly prefix: string;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly newId: () => string;
  private readonly inflight: Inflight;
  private readonly views: RoomViews;
  private readonly connections: Connections;
  private readonly replay: StreamReplay;
  private readonly batch: ChatBatch;
  private readonly entry: RoomEntry;
  private readonly requests: RoomRequests;
  private readonly presence: ProcessPresence;

  constructor(options: RedisHubOptions) {
    this.limits = { ...DEFAULT_HUB_LIMITS, ...options.limits };
    this.prefix = options.prefix ?? "chat:";
    this.now = options.now ?? Date.now;
    this.log = options.log ?? silentLogger;
    this.metrics = options.metrics ?? new Metrics();
    this.newId = options.newId ?? (() => crypto.randomUUID().replaceAll("-", "").slice(0, 16));
    this.client = connectRedis(options.url);
    this.history = new RedisHistory(this.client, this.prefix);
    this.inflight = new Inflight(this.log);
    const { client, prefix, procId, limits, log, metrics, now, inflight, history } = this;
    const maxLen = String(options.streamMaxLen ?? 10_000);
    const scripts = new RoomScripts(client, prefix, maxLen, procId, limits);
    const snapshot = async (room: string) => {
      await this.ready;
      return scripts.snapshot(room);
    };
    this.views = new RoomViews(prefix, snapshot, () => this.replay.wake());
    // What every part may use; each takes the fields it needs, plus its links to the others.
    const base = { client, prefix, procId, limits, log, metrics, now, inflight, scripts, views: this.views };
    const connections = new Connections({ ...base, flush: () => this.flush() });
    const replay = new StreamReplay({ ...base, connections, fanout: options.fanout });
    const schedule = options.schedule ?? ((fn) => setTimeout(fn, 0));
    const unblock = (conn: RedisConnection) => this.unblock(conn);
    this.connections = connections;
    this.replay = replay;
    this.batch = new ChatBatch({ ...base, connections, replay, schedule });
    this.entry = new RoomEntry({ ...base, connections, welcomed: unblock });
    this.requests = new RoomRequests({
      ...base,
      connections,
      history,
      flush: () => this.flush(),
      answered: unblock,
    });
    this.presence = new ProcessPresence({
      ...base,
      maxLen,
      ttlMs: options.presenceTtlMs ?? 5000,
      resumeTtlMs: limits.resumeTtlMs,
      presumedDead: () => {
        for (const conn of connections.all()) {
          conn.claimed = false;
          connections.resync(conn, "this server was presumed dead");
        }
      },
    });
    this.ready = this.start();
    this.ready.catch(() => {});
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Rooms with users on any process, with their counts across every process, busiest first. */
  roomList(): Promise<RoomCount[]> {
    return clusterRooms(this.client, this.prefix);
  }

  /** A new connection; it gets its welcome once its nickname is claimed and its join replayed here. */
  open(peer: Peer, params: RedisOpenParams): RedisConnection {
    const conn = new RedisConnection(this.newId(), peer, this.limits, this.now());
    conn.fixedNick = params.fixedNick;
    conn.busy = true;
    this.connections.add(conn);
    this.inflight.track(
      this.entry.enter(conn, normalizeRoom(params.room), {
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
      if (!this.connections.admit(conn, "frame")) return;
      const decoded = decodeClientMessage(frame);
      if (!decoded.ok) {
        this.connections.fail(conn, decoded.error.code, decoded.error.message, decoded.error.id);
        return;
      }
      this.handle(conn, decoded.value);
    } catch (err) {
      this.log.log("error", "handler_failed", { conn: conn.id, ...describeError(err) });
      this.connections.fail(conn, "internal", "the server failed to handle this message");
    }
  }

  close(conn: RedisConnection, code: number): void {
    this.metrics.close(code);
    if (conn.state === "closed") return;
    this.connections.detach(conn, true);
  }

  /** Sends this turn's chats to Redis, one script per room; acks follow the replay of each message. */
  flush(): void {
    this.batch.flush();
  }

  /** Flushes, then closes every socket with 1001. */
  shutdown(): void {
    this.flush();
    this.batch.stop();
    for (const conn of this.connections.all()) {
      this.connections.closePeer(conn, CLOSE.goingAway, "server shutting down");
    }
  }

  /** Sessions expire in Redis by themselves; this runs the dead-process sweep now. */
  sweep(): void {
    this.inflight.track(this.presence.sweepDead());
  }

  /** After `shutdown`: waits for pending writes, removes this process from Redis and disconnects. */
  async stop(): Promise<void> {
    this.presence.stopTimers();
    await this.inflight.settle(3000);
    try {
      await this.ready;
      await this.presence.retire();
    } catch (err) {
      this.log.log("warn", "redis_retire_failed", describeError(err));
    }
    await this.replay.stop();
    this.client.close();
  }

  /** For tests: resolves once nothing is in flight and every room view has replayed its whole stream. */
  async quiesce(): Promise<void> {
    for (let round = 0; ; round++) {
      this.flush();
      await this.inflight.settle(10_000);
      const behind = await this.replay.behind();
      if (!behind && this.inflight.size === 0 && !this.batch.scheduled) return;
      if (round > 2000) throw new Error("redis hub never became quiet");
      await Bun.sleep(2);
    }
  }

  /** Connects, registers this process, then follows the streams of the rooms in use here. */
  private async start(): Promise<void> {
    try {
      await this.client.connect();
    } catch (err) {
      throw new ConfigError("REDIS_URL", `cannot reach Redis: ${describeError(err).error}`);
    }
    await this.presence.beat();
    this.replay.follow(await this.client.duplicate());
    this.presence.startTimers();
  }

  /** A connection waiting for Redis keeps its frames for later, so they apply in the order they were sent. */
  private handle(conn: RedisConnection, msg: ClientMessage): void {
    if (conn.busy) {
      if (conn.deferred.length >= MAX_DEFERRED) {
        this.connections.closePeer(conn, CLOSE.policy, "too many messages while waiting");
        return;
      }
      conn.deferred.push(msg);
      return;
    }
    const gate = gateOf(msg.type);
    if (gate === "control" && !this.connections.admit(conn, gate)) return;
    if (gate !== "chat") conn.limits.passed();
    const view = conn.view as View;
    switch (msg.type) {
      case "chat":
        if (!this.connections.admit(conn, "chat", msg.id)) return;
        conn.limits.passed();
        this.batch.add(conn, view.name, msg);
        break;
      case "nick":
        this.requests.rename(conn, view, normalizeNick(msg.nick));
        break;
      case "join":
        this.join(conn, view, normalizeRoom(msg.room), msg.since);
        break;
      case "history":
        this.requests.history(conn, view.name, msg.before, msg.limit ?? LIMITS.historyDefault);
        break;
      case "who":
        this.connections.send(conn, { type: "users", room: view.name, users: view.sortedUsers() });
        break;
      case "typing":
        this.requests.typing(conn, view);
        break;
    }
  }

  /** The same room again is a fresh welcome; another one is a leave here, then a claim there. */
  private join(conn: RedisConnection, current: View, target: string, since: number | undefined): void {
    if (target === current.name) {
      this.entry.welcome(conn, current, since);
      return;
    }
    this.flush();
    conn.busy = true;
    this.connections.leaveView(conn, false);
    conn.state = "pending";
    this.inflight.track(this.entry.enter(conn, target, { since, wanted: conn.fixedNick ?? conn.nick }));
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
}
