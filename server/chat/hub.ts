/**
 * The chat core: connections, rooms, nicknames, presence, delivery and limits, over an engine that
 * stores and orders (local: SQLite or memory; Redis: several processes). No Bun, SQLite or Redis in
 * here, so a model test drives it; server.ts only translates sockets to and from it.
 */
import {
  CLOSE,
  type ClientMessage,
  type ConnectParams,
  decodeClientMessage,
  LIMITS,
  normalizeNick,
  normalizeRoom,
  v2,
} from "../../protocol";
import { ClientBudgets } from "./client-budgets";
import { monotonicNow } from "./clock";
import { Connection } from "./connection";
import { Connections } from "./connections";
import { Delivery } from "./delivery";
import type { Engine, EngineConn, EngineSink, Page, RoomCount } from "./engine";
import type { ChatLimits } from "./limits";
import { describeError, type Logger, silentLogger } from "./log";
import { Metrics } from "./metrics";
import type { Fanout, Peer } from "./peer";
import { toFolded, toV1 } from "./posts";
import { gateOf } from "./rate-limit";
import { Replicas } from "./replicas";
import { Requests } from "./requests";
import { RoomEntry } from "./room-entry";
import { newConnectionId } from "./tokens";
import type { AdminOutcome } from "./v2/admin-ops";
import { ProtocolV2 } from "./v2/protocol-v2";
import { UsersHere } from "./v2/user-conn";
import type { V2Open } from "./v2/user-entry";

export type { V2Open };

export interface HubDeps {
  engine: Engine<Connection>;
  fanout: Fanout;
  limits: ChatLimits;
  now?: () => number;
  /** Wall-clock time, ms since the epoch (edit windows, bans); Date.now by default. */
  wallNow?: () => number;
  /** Runs `fn` in `ms` (held presence); the server passes setTimeout. */
  timer?: (fn: () => void, ms: number) => void;
  log?: Logger;
  metrics?: Metrics;
  newId?: () => string;
}

export interface OpenParams extends ConnectParams {
  /** The client address the per-address budgets count by (server.ts resolves it). */
  client?: string | undefined;
  /** Nickname fixed by an access token: taken on connect, never changed with `nick`. */
  fixedNick?: string | undefined;
  /** A v2 connection: its user, as the runtime identified it before the upgrade. */
  v2?: V2Open | undefined;
}

type Frame = string | ArrayBuffer | ArrayBufferView;

/** Frames a connection may send while it waits for the engine (a claim, a rename) before it is closed. */
const MAX_DEFERRED = 256;

export class ChatHub {
  readonly metrics: Metrics;
  readonly limits: ChatLimits;
  readonly ready: Promise<void>;
  private readonly engine: Engine<Connection>;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly newId: () => string;
  private readonly replicas: Replicas;
  private readonly connections: Connections;
  private readonly delivery: Delivery;
  private readonly entry: RoomEntry;
  private readonly requests: Requests;
  private readonly budgets: ClientBudgets;
  private readonly usersHere = new UsersHere();
  private readonly v2: ProtocolV2;

  constructor(deps: HubDeps) {
    this.engine = deps.engine;
    this.limits = deps.limits;
    this.now = deps.now ?? monotonicNow;
    this.log = deps.log ?? silentLogger;
    this.metrics = deps.metrics ?? new Metrics();
    this.newId = deps.newId ?? newConnectionId;
    const engine = deps.engine as unknown as Engine<EngineConn>;
    const base = { engine, limits: this.limits, log: this.log, metrics: this.metrics, now: this.now };
    this.replicas = new Replicas(engine);
    const replicas = this.replicas;
    this.budgets = new ClientBudgets(this.limits);
    const usersHere = this.usersHere;
    this.connections = new Connections({ ...base, replicas, budgets: this.budgets, usersHere });
    const connections = this.connections;
    const timer = deps.timer ?? ((fn, ms) => setTimeout(fn, ms));
    this.delivery = new Delivery({ ...base, replicas, connections, fanout: deps.fanout, timer });
    const unblock = (conn: Connection) => this.unblock(conn);
    const wallNow = deps.wallNow ?? Date.now;
    this.entry = new RoomEntry({ ...base, replicas, connections, budgets: this.budgets, unblock, wallNow });
    this.requests = new Requests({
      ...base,
      replicas,
      connections,
      budgets: this.budgets,
      entry: this.entry,
      unblock,
      wallNow,
    });
    this.v2 = new ProtocolV2({
      ...base,
      replicas,
      connections,
      budgets: this.budgets,
      usersHere: this.usersHere,
      wallNow,
      unblock,
    });
    this.engine.bind(this.sink());
    this.ready = this.engine.ready;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Rooms with at least one user (on any process), busiest first. */
  roomList(): RoomCount[] | Promise<RoomCount[]> {
    return this.engine.roomList();
  }

  /** A room's stored messages for `GET /api/rooms/:room/messages`: as v1 shows them, or folded (v2). */
  history(room: string, before: number, limit: number): Promise<Page>;
  history(
    room: string,
    before: number,
    limit: number,
    version: 2,
  ): Promise<{ messages: v2.FoldedPost[]; more: boolean }>;
  history(room: string, before: number, limit: number, version: 1 | 2 = 1): Promise<unknown> {
    return new Promise((resolve, reject) =>
      this.engine.history(room, before, limit, (err, page) => {
        if ((err !== undefined && err !== null) || !page) return reject(err);
        const messages = version === 2 ? page.messages.map(toFolded) : page.messages.map(toV1);
        resolve({ messages, more: page.more });
      }),
    );
  }

  /** The key identity tokens are signed with (when IDENTITY_SECRET does not give one). */
  identityKey(): Promise<string> {
    return new Promise((resolve, reject) =>
      this.engine.users.identityKey((err, key) =>
        err !== undefined && err !== null ? reject(err) : resolve(key as string),
      ),
    );
  }

  /** True when the v2 user exists and is not revoked. */
  userExists(userId: string): Promise<boolean> {
    return new Promise((resolve, reject) =>
      this.engine.users.load(userId, (err, user) =>
        err !== undefined && err !== null ? reject(err) : resolve(user !== undefined),
      ),
    );
  }

  /** Revokes a v2 user: its identity token stops working and its connections are closed. */
  revokeUser(userId: string): Promise<boolean> {
    return new Promise((resolve, reject) =>
      this.engine.users.revoke(userId, (err, found) => {
        if (err !== undefined && err !== null) return reject(err);
        if (found) this.engine.users.publish(userId, { type: "revoked" });
        resolve(found === true);
      }),
    );
  }

  // The admin API's moderation (v2/admin-ops.ts): as a moderator called `admin`.
  adminDelete(room: string, seq: number): Promise<AdminOutcome> {
    return this.v2.admin.delete(room, seq);
  }
  async adminTopic(room: string, topic: string): Promise<"ok"> {
    await this.v2.admin.topic(room, topic);
    return "ok";
  }
  adminKick(room: string, nick: string, reason?: string): Promise<AdminOutcome> {
    return this.v2.admin.kick(room, nick, reason);
  }
  adminBan(room: string, nick: string, seconds?: number, reason?: string): Promise<AdminOutcome> {
    return this.v2.admin.ban(room, nick, seconds, reason);
  }
  adminUnban(room: string, userId: string): Promise<boolean> {
    return this.v2.admin.unban(room, userId);
  }
  /** Whether a v1 connection with this nick is held out of the room by a ban. */
  isBanned(room: string, nick: string): Promise<boolean> {
    return this.v2.admin.isBanned(room, nick);
  }

  /** A new connection; it gets its welcome once its nickname is claimed and its join delivered here. */
  open(peer: Peer, params: OpenParams): Connection {
    const conn = new Connection(this.newId(), peer, this.limits, this.now());
    conn.fixedNick = params.fixedNick;
    conn.client = params.client ?? "";
    this.connections.add(conn);
    if (params.v2 !== undefined) {
      this.v2.open(conn, params.v2);
      return conn;
    }
    this.entry.enter(conn, normalizeRoom(params.room), {
      since: params.since,
      resume: params.resume,
      wanted: params.fixedNick ?? params.nick,
    });
    return conn;
  }

  /** Handles one frame; never throws, whatever the frame. */
  receive(conn: Connection, frame: Frame): void {
    if (conn.state === "closed") return;
    this.metrics.messagesIn++;
    try {
      if (!this.connections.admit(conn, "frame")) return;
      if (conn.userId !== undefined) {
        const decoded = v2.decodeClientMessageV2(frame);
        if (!decoded.ok) {
          this.connections.fail(conn, decoded.error.code, decoded.error.message, decoded.error.id);
          return;
        }
        this.handleV2(conn, decoded.value);
        return;
      }
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

  /** The socket is gone: the user leaves the room unless a resumed connection replaced it. */
  close(conn: Connection, code: number): void {
    this.metrics.close(code);
    if (conn.state === "closed") return;
    this.connections.detach(conn, true);
  }

  /** Writes what is pending now; `force` holds nothing back (at shutdown). */
  flush(force = false): void {
    try {
      this.engine.flush(force);
      this.delivery.release(force);
    } catch (err) {
      this.log.log("error", "flush_failed", describeError(err));
    }
  }

  /** Flushes what is pending, then closes every socket with 1001. */
  shutdown(): void {
    this.flush(true);
    for (const conn of this.connections.all()) {
      this.connections.closePeer(conn, CLOSE.goingAway, "server shutting down");
    }
  }

  /** Closes the most backlogged connection of each client address over its share of unsent bytes. */
  enforceShares(): void {
    this.connections.enforceShares();
  }

  /** Forgets what has expired: sessions past their resume window, processes presumed dead. */
  sweep(): void {
    this.engine.sweep();
  }

  /** After `shutdown`: writes what is left and lets the engine go. */
  async stop(): Promise<void> {
    this.flush(true);
    await this.engine.stop();
  }

  /** For tests: resolves once nothing is in flight and every followed room's log was delivered. */
  async quiesce(): Promise<void> {
    this.flush();
    await this.engine.quiesce();
  }

  private sink(): EngineSink<Connection> {
    return {
      deliver: (room, entries) => this.delivery.deliver(room, entries),
      committed: (conn, room, id, seq) => this.delivery.committed(conn, room, id, seq),
      failed: (conn, id) => this.delivery.failed(conn, id),
      resync: (room, why) => {
        const replica = this.replicas.get(room);
        if (replica) this.delivery.resync(replica, why);
      },
      user: (userId, event) => this.v2.userEvent(userId, event),
      evict: (conn, why) => {
        if (conn.state === "closed") return;
        conn.claimed = false;
        this.connections.resync(conn, why);
      },
    };
  }

  /**
   * A connection waiting for the engine keeps its frames for later, so they apply in the order sent.
   * Before its welcome, a rename or a move waits for it too (and what follows them), so the welcome
   * agrees with the name it shows; chats go ahead, and their acks follow the welcome.
   */
  /** Frames wait while the connection waits for the engine or its welcome, as v1's do. */
  private defer(conn: Connection, msg: ClientMessage | v2.ClientMessageV2): void {
    if (conn.deferred === undefined) conn.deferred = [];
    if (conn.deferred.length >= MAX_DEFERRED) {
      this.connections.closePeer(conn, CLOSE.policy, "too many messages while waiting");
      return;
    }
    conn.deferred.push(msg);
  }

  private handleV2(conn: Connection, msg: v2.ClientMessageV2): void {
    if (conn.busy || conn.state === "pending") this.defer(conn, msg);
    else this.v2.handle(conn, msg);
  }

  private handle(conn: Connection, msg: ClientMessage): void {
    const waits =
      conn.busy ||
      (conn.state === "pending" &&
        ((conn.deferred?.length ?? 0) > 0 || msg.type === "nick" || msg.type === "join"));
    if (waits) {
      if (conn.deferred === undefined) conn.deferred = [];
      const deferred = conn.deferred;
      if (deferred.length >= MAX_DEFERRED) {
        this.connections.closePeer(conn, CLOSE.policy, "too many messages while waiting");
        return;
      }
      deferred.push(msg);
      return;
    }
    const replica = conn.replica;
    if (!replica) return;
    const gate = gateOf(msg.type);
    if (gate === "control" && !this.connections.admit(conn, gate)) return;
    if (gate !== "chat") conn.limits.passed();
    switch (msg.type) {
      case "chat":
        if (!this.connections.admit(conn, "chat", msg.id)) return;
        conn.limits.passed();
        if (conn.state === "pending") conn.unsettledChats++;
        this.engine.chat(conn, replica.name, msg.text, msg.id);
        break;
      case "nick":
        this.requests.rename(conn, replica, normalizeNick(msg.nick));
        break;
      case "join":
        this.requests.join(conn, replica, normalizeRoom(msg.room), msg.since);
        break;
      case "history":
        this.requests.history(conn, replica.name, msg.before, msg.limit ?? LIMITS.historyDefault);
        break;
      case "who":
        this.requests.who(conn, replica);
        break;
      case "typing":
        this.requests.typing(conn, replica);
        break;
    }
  }

  /** Replays the frames that arrived while the connection waited, in order (some may wait again). */
  private unblock(conn: Connection): void {
    if (conn.state === "closed") return;
    conn.busy = false;
    const frames = conn.deferred;
    if (frames === undefined) return;
    conn.deferred = undefined;
    for (const msg of frames) {
      if ((conn.state as string) === "closed") return;
      try {
        if (conn.v2 !== undefined) this.handleV2(conn, msg as v2.ClientMessageV2);
        else this.handle(conn, msg as ClientMessage);
      } catch (err) {
        this.log.log("error", "handler_failed", { conn: conn.id, ...describeError(err) });
      }
    }
  }
}
