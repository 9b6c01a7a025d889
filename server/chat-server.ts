/**
 * One chat server, whatever the runtime: the hub over its engine, v2 identities, the HTTP routes, the
 * checks before an upgrade, each socket's life (heartbeat, access-token expiry) and the stop
 * sequence. An entry (server.ts on Bun, server.deno.ts on Deno) only translates its runtime's server
 * and sockets to these calls.
 */
import { CLOSE } from "../protocol";
import { TokenAuthority } from "./auth";
import { monotonicNow } from "./chat/clock";
import type { Connection } from "./chat/connection";
import type { Engine } from "./chat/engine";
import { ChatHub } from "./chat/hub";
import { chatLimits } from "./chat/limits";
import { describeError, jsonLogger, type Logger } from "./chat/log";
import { Metrics } from "./chat/metrics";
import type { Fanout, Peer } from "./chat/peer";
import { ClientAddresses } from "./client-address";
import { type Config, ConfigError } from "./config";
import type { EngineDeps } from "./engines/choose";
import type { ChatStore } from "./engines/local/store";
import { Heartbeat } from "./heartbeat";
import { type HttpContext, refuse, routeHttp } from "./http";
import { Identities } from "./identity";
import { ConnectRate, IpLimit } from "./ip-limit";
import { type Admitted, admit, type UpgradeGate } from "./upgrade";

/** What a socket carries from its upgrade to its close. */
export interface SocketState extends Admitted {
  conn: Connection | undefined;
  expiry: ReturnType<typeof setTimeout> | undefined;
  /** The runtime's socket, from its open. */
  link: SocketLink | undefined;
  /** Admitted and not yet open: counted against MAX_CONNECTIONS meanwhile. */
  pending: boolean;
}

/** What the wiring asks of a runtime's socket beyond the chat's Peer. */
export interface SocketLink extends Peer {
  /** A ping frame (the server's heartbeat); unused where the runtime pings on its own. */
  ping(): void;
  /** Drops the socket at once, without a closing handshake (a dead peer). */
  terminate(): void;
}

/** What each runtime brings. */
export interface Runtime {
  /** The engine for `config` (one runtime may not offer every engine). */
  createEngine(config: Config, deps: EngineDeps): Engine<Connection>;
  /** Every subscriber of a topic: Bun's native pub/sub, or a topic map of the entry's own. */
  fanout: Fanout;
  /** The browser page at `GET /`. */
  page(req: Request): Response | Promise<Response>;
  /**
   * The runtime pings idle sockets and drops silent ones itself (Deno's `idleTimeout`), so the
   * heartbeat here only bounds each client's unsent bytes; else it pings and drops (Bun: its idle
   * timer is reset by every frame the server sends, so a dead reader in a busy room would stay).
   */
  ownHeartbeat?: boolean;
}

export interface StartOptions {
  log?: Logger;
  /** Storage to use instead of opening DB_PATH: tests pass one that fails on demand. */
  store?: ChatStore;
  /** Key prefix in Redis: tests give each server its own. */
  redisPrefix?: string;
}

/** A server as its entry hands it out. */
export interface RunningChatServer {
  readonly url: URL;
  readonly hub: ChatHub;
  /**
   * Resolves once the engine can serve (at once for SQLite; once registered in Redis) and the key of
   * v2 identity tokens is loaded.
   */
  readonly ready: Promise<void>;
  /** Flushes pending writes, closes every socket with 1001 and lets the engine go. */
  stop(): Promise<void>;
}

/** setTimeout's longest delay; token expiries further out are re-armed when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class ChatServer {
  readonly hub: ChatHub;
  readonly log: Logger;
  readonly ready: Promise<void>;
  private readonly heartbeat: Heartbeat<SocketState>;
  private readonly perIp: IpLimit;
  private readonly gate: UpgradeGate;
  private readonly http: HttpContext;
  private readonly timers: Array<ReturnType<typeof setInterval>> = [];
  private pending = 0;
  private stopping = false;

  constructor(
    readonly config: Config,
    private readonly runtime: Runtime,
    options: StartOptions = {},
  ) {
    const log = options.log ?? jsonLogger(config.logLevel, console.log);
    this.log = log;
    const auth = config.authSecret === undefined ? undefined : new TokenAuthority(config.authSecret);
    this.heartbeat = new Heartbeat(config.heartbeatTimeoutSeconds * 1000);
    this.perIp = new IpLimit(config.maxConnectionsPerIp);
    const metrics = new Metrics();
    const engine = runtime.createEngine(config, {
      log,
      metrics,
      store: options.store,
      redisPrefix: options.redisPrefix,
    });
    const hub = new ChatHub({ engine, limits: chatLimits(config), log, metrics, fanout: runtime.fanout });
    this.hub = hub;
    // v2 identity tokens exist only without AUTH_SECRET (with it, the access token names the user).
    const identities = auth ? undefined : new Identities(config.identitySecret, hub.ready, hub);
    this.ready = identities ? Promise.all([hub.ready, identities.ready]).then(() => undefined) : hub.ready;
    // Whoever awaits `ready` sees a failure; a server nobody awaits (tests) must not leave it unhandled.
    this.ready.catch(() => undefined);
    this.http = {
      hub,
      startedAt: monotonicNow(),
      page: (req) => runtime.page(req),
      admin: { token: config.adminToken, hub, log },
      allowedOrigins: config.allowedOrigins,
    };
    this.gate = {
      config,
      auth,
      perIp: this.perIp,
      connectRate: new ConnectRate(config.connectRatePerIp, config.connectBurstPerIp),
      addresses: new ClientAddresses(config.trustedProxies),
      metrics,
      log,
      load: () => hub.connectionCount + this.pending,
      stopping: () => this.stopping,
      identities,
      users: hub,
    };
  }

  /**
   * Answers one request from `peer` (the socket's address): an HTTP route, or for `/ws` the checks,
   * then `upgrade`, the runtime's: its 101 response, undefined when it answers by itself (Bun), or
   * false when the upgrade failed.
   */
  async fetch(
    req: Request,
    peer: string,
    upgrade: (state: SocketState) => Response | undefined | false,
  ): Promise<Response | undefined> {
    const url = new URL(req.url);
    try {
      if (url.pathname !== "/ws") return await routeHttp(req, url, this.http);
      const admitted = await admit(this.gate, req, url, peer);
      if (!admitted.ok) return admitted.response;
      const state: SocketState = {
        ...admitted.value,
        conn: undefined,
        expiry: undefined,
        link: undefined,
        pending: true,
      };
      this.pending++;
      const answer = upgrade(state);
      if (answer !== false) return answer;
      this.settle(state);
      this.perIp.release(state.client);
      return refuse(400, "bad_request", "the WebSocket upgrade failed");
    } catch (err) {
      this.log.log("error", "http_failed", { path: url.pathname, ...describeError(err) });
      return refuse(500, "internal", "the server failed to answer");
    }
  }

  /** The socket is open: it joins the chat (or is closed at once, when a check could not be made). */
  opened(state: SocketState, link: SocketLink): void {
    this.settle(state);
    state.link = link;
    // Admitted although a check failed for the storage's sake: closed as the core closes what it cannot serve.
    if (state.unchecked !== undefined) {
      link.close(CLOSE.internal, state.unchecked);
      return;
    }
    try {
      this.heartbeat.heard(state, monotonicNow());
      const v2 = state.v2;
      state.conn = this.hub.open(link, {
        ...state.params,
        fixedNick: state.fixedNick,
        client: state.client,
        v2,
      });
      this.log.log("debug", "conn_open", {
        conn: state.conn.id,
        ...(v2 ? { protocol: 2, user: v2.userId, room: v2.room } : { room: state.params.room }),
        ip: state.ip,
      });
      this.armExpiry(state);
    } catch (err) {
      this.log.log("error", "open_failed", describeError(err));
      link.close(CLOSE.internal, "internal error");
    }
  }

  received(state: SocketState, frame: string | ArrayBuffer | ArrayBufferView): void {
    this.heartbeat.heard(state, monotonicNow());
    const conn = state.conn;
    if (conn) this.hub.receive(conn, frame);
  }

  /** A pong (or any sign of life that is no frame). */
  heard(state: SocketState): void {
    this.heartbeat.heard(state, monotonicNow());
  }

  closed(state: SocketState, code: number): void {
    try {
      this.settle(state);
      this.heartbeat.forget(state);
      this.perIp.release(state.client);
      clearTimeout(state.expiry);
      const conn = state.conn;
      if (conn) this.hub.close(conn, code);
      this.log.log("debug", "conn_close", { conn: conn?.id, code });
    } catch (err) {
      this.log.log("error", "close_failed", describeError(err));
    }
  }

  /** Rare path: a publish was dropped for someone, so find who is past the hub's limit now. */
  closeBacklogged(): void {
    for (const state of this.heartbeat.sockets()) {
      if ((state.link?.bufferedAmount() ?? 0) > this.config.slowConsumerBytes) {
        state.link?.close(CLOSE.policy, "too slow to keep up");
      }
    }
  }

  /** Once listening: the retention sweep and the heartbeat. */
  listening(): void {
    const sweeper = setInterval(() => this.hub.sweep(), 60_000);
    const beater = setInterval(() => this.beat(), this.config.heartbeatIntervalSeconds * 1000);
    for (const timer of [sweeper, beater]) {
      // Unref'd where the runtime can: a server nobody stopped (a test's) must not hold its process.
      (timer as { unref?: () => void }).unref?.();
      this.timers.push(timer);
    }
  }

  /** The runtime could not listen: lets the engine go, and names a port in use as a configuration error. */
  failedToListen(err: unknown): never {
    void this.hub.stop();
    const e = err as { code?: unknown; name?: unknown } | null;
    if (e?.code === "EADDRINUSE" || e?.name === "AddrInUse")
      throw new ConfigError(
        "PORT",
        `${this.config.port} is in use on ${this.config.host}; pick another with PORT`,
      );
    throw err;
  }

  /** Refuses new sockets, stores what is pending, closes every socket with 1001, closes the listener, lets the engine go. */
  async stop(closeListener: () => Promise<void>): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const timer of this.timers) clearInterval(timer);
    this.hub.shutdown();
    await closeListener();
    await this.hub.stop();
  }

  /** Pings everyone; drops whoever has sent nothing, not even a pong, within the timeout. */
  private beat(): void {
    if (!this.runtime.ownHeartbeat) {
      const { dead, alive } = this.heartbeat.sweep(monotonicNow());
      for (const state of dead) {
        this.heartbeat.forget(state);
        this.log.log("info", "dead_peer_dropped", { conn: state.conn?.id });
        state.link?.terminate();
      }
      for (const state of alive) state.link?.ping();
    }
    this.hub.enforceShares();
  }

  private armExpiry(state: SocketState): void {
    const at = state.tokenExpiresAt;
    if (at === undefined) return;
    const delay = at - Date.now();
    state.expiry = setTimeout(
      () =>
        delay > MAX_TIMER_MS
          ? this.armExpiry(state)
          : state.link?.close(CLOSE.policy, "access token expired"),
      Math.min(Math.max(0, delay), MAX_TIMER_MS),
    );
  }

  /** Admitted sockets count until they open, close or fail to upgrade, whichever comes first. */
  private settle(state: SocketState): void {
    if (!state.pending) return;
    state.pending = false;
    this.pending--;
  }
}
