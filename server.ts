/** The one Bun.serve entry: HTTP routes, the checks before the upgrade, and sockets handed to the chat logic. */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { Server, ServerWebSocket } from "bun";
import { CLOSE, type ConnectParams, parseConnectQuery } from "./protocol";
import { TokenAuthority } from "./server/auth";
import { BunPeer } from "./server/bun-peer";
import type { ChatService } from "./server/chat-service";
import { type Config, ConfigError, loadConfig } from "./server/config";
import { Heartbeat } from "./server/heartbeat";
import { type HttpContext, refuse, routeHttp } from "./server/http";
import { ChatHub } from "./server/hub";
import { IpLimit } from "./server/ip-limit";
import { describeError, jsonLogger, type Logger } from "./server/log";
import { originAllowed, requestScheme } from "./server/origin";
import { browserPage } from "./server/page";
import { RedisHub } from "./server/redis/redis-hub";
import { type DbSync, SqliteStore } from "./server/sqlite-store";
import type { ChatStore } from "./server/store";

interface SocketData {
  params: ConnectParams;
  ip: string;
  fixedNick: string | undefined;
  tokenExpiresAt: number | undefined;
  conn: { readonly id: string } | undefined;
  expiry: ReturnType<typeof setTimeout> | undefined;
}

type Socket = ServerWebSocket<SocketData>;

export interface RunningServer {
  readonly url: URL;
  /** ChatHub, or RedisHub when REDIS_URL is set. */
  readonly hub: ChatService;
  readonly server: Server<SocketData>;
  /** Flushes pending writes, closes every socket with 1001 and the database. */
  stop(): Promise<void>;
}

export interface StartOptions {
  log?: Logger;
  /** Storage to use instead of opening DB_PATH: tests pass one that fails on demand. */
  store?: ChatStore;
}

/** setTimeout's longest delay; token expiries further out are re-armed when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Bun drops frames silently past its limit; the hub closes slow readers long before that. */
const BACKPRESSURE_FACTOR = 4;

function openStore(path: string, sync: DbSync): SqliteStore {
  try {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    return new SqliteStore(path, Date.now(), sync);
  } catch (err) {
    throw new ConfigError("DB_PATH", `cannot open ${path}: ${describeError(err).error}`);
  }
}

function isLogger(x: StartOptions | Logger): x is Logger {
  return typeof (x as Logger).log === "function";
}

export function startServer(config: Config, options: StartOptions | Logger = {}): RunningServer {
  const opts: StartOptions = isLogger(options) ? { log: options } : options;
  const log = opts.log ?? jsonLogger(config.logLevel, console.log);
  // With REDIS_URL, Redis holds the messages and no database is opened.
  const store =
    config.redisUrl === undefined ? (opts.store ?? openStore(config.dbPath, config.dbSync)) : undefined;
  const startedAt = Date.now();
  const auth = config.authSecret === undefined ? undefined : new TokenAuthority(config.authSecret);
  const heartbeat = new Heartbeat<Socket>(config.heartbeatTimeoutSeconds * 1000);
  const perIp = new IpLimit(config.maxConnectionsPerIp);
  let server: Server<SocketData> | undefined;
  let upgrading = 0;
  let stopping = false;

  const deps = {
    fanout: {
      publish(topic: string, data: string) {
        // 0: Bun dropped this frame for someone; close whoever is that far behind before the next one.
        if (server?.publish(topic, data) === 0) closeBackloggedSockets();
      },
    },
    limits: {
      rateLimit: config.rateLimit,
      rateBurst: config.rateBurst,
      controlRate: config.controlRateLimit,
      controlBurst: config.controlRateBurst,
      frameRate: config.frameRateLimit,
      frameBurst: config.frameRateBurst,
      floodCloseAfter: config.floodCloseAfter,
      slowConsumerBytes: config.slowConsumerBytes,
      presenceBatchMs: config.presenceBatchMs,
      presenceBatchMinMembers: config.presenceBatchMinMembers,
      resumeTtlMs: config.resumeTtlSeconds * 1000,
    },
    schedule: (fn: () => void) => setImmediate(fn),
    log,
  };
  const hub: ChatService = store
    ? new ChatHub({ store, ...deps })
    : new RedisHub({ url: config.redisUrl ?? "", presenceTtlMs: config.presenceTtlSeconds * 1000, ...deps });
  const history = store ?? (hub as RedisHub).history;
  const http: HttpContext = { hub, store: history, startedAt, page: browserPage };

  function refuseUpgrade(status: number, code: Parameters<typeof refuse>[1], message: string, ip: string) {
    hub.metrics.refusal(code);
    log.log("info", "upgrade_refused", { code, ip });
    return refuse(status, code, message);
  }

  async function upgrade(req: Request, url: URL, srv: Server<SocketData>): Promise<Response | undefined> {
    const ip = srv.requestIP(req)?.address ?? "unknown";
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return refuse(400, "bad_request", "expected a WebSocket upgrade");
    }
    if (stopping) return refuseUpgrade(503, "server_busy", "the server is shutting down", ip);
    if (hub.connectionCount + upgrading >= config.maxConnections) {
      return refuseUpgrade(503, "server_busy", "the server is at its connection limit; try again later", ip);
    }
    const parsed = parseConnectQuery(url.searchParams);
    if (!parsed.ok) return refuseUpgrade(400, parsed.error.code, parsed.error.message, ip);
    const scheme = requestScheme(req.headers.get("x-forwarded-proto"), url);
    if (!originAllowed(req.headers.get("origin"), req.headers.get("host"), config.allowedOrigins, scheme)) {
      return refuseUpgrade(403, "forbidden", "this Origin may not connect", ip);
    }
    let fixedNick: string | undefined;
    let tokenExpiresAt: number | undefined;
    if (auth) {
      const token = parsed.value.token;
      const verified = token === undefined ? undefined : await auth.verify(token, Date.now() / 1000);
      if (!verified?.ok) {
        return refuseUpgrade(401, "unauthorized", verified ? verified.reason : "a token is required", ip);
      }
      fixedNick = verified.claims.nick;
      tokenExpiresAt = verified.claims.exp * 1000;
    }
    // Checked again: others may have connected while the token was being verified.
    if (stopping) return refuseUpgrade(503, "server_busy", "the server is shutting down", ip);
    if (hub.connectionCount + upgrading >= config.maxConnections) {
      return refuseUpgrade(503, "server_busy", "the server is at its connection limit; try again later", ip);
    }
    if (!perIp.acquire(ip)) {
      return refuseUpgrade(503, "server_busy", "too many connections from your address", ip);
    }
    upgrading++;
    try {
      const data: SocketData = {
        params: parsed.value,
        ip,
        fixedNick,
        tokenExpiresAt,
        conn: undefined,
        expiry: undefined,
      };
      if (srv.upgrade(req, { data })) return undefined;
    } finally {
      upgrading--;
    }
    perIp.release(ip);
    return refuse(400, "bad_request", "the WebSocket upgrade failed");
  }

  function armExpiry(ws: Socket): void {
    const at = ws.data.tokenExpiresAt;
    if (at === undefined) return;
    const delay = at - Date.now();
    ws.data.expiry = setTimeout(
      () => (delay > MAX_TIMER_MS ? armExpiry(ws) : ws.close(CLOSE.policy, "access token expired")),
      Math.min(Math.max(0, delay), MAX_TIMER_MS),
    );
  }

  /** Rare path: a publish was dropped for someone, so find who is past the hub's limit now. */
  function closeBackloggedSockets(): void {
    for (const ws of heartbeat.sockets()) {
      if (ws.getBufferedAmount() > config.slowConsumerBytes) ws.close(CLOSE.policy, "too slow to keep up");
    }
  }

  /** Pings everyone; drops whoever has sent nothing, not even a pong, within the timeout. */
  function beat(): void {
    const { dead, alive } = heartbeat.sweep(Date.now());
    for (const ws of dead) {
      heartbeat.forget(ws);
      log.log("info", "dead_peer_dropped", { conn: ws.data.conn?.id });
      ws.terminate();
    }
    for (const ws of alive) ws.ping();
  }

  server = Bun.serve<SocketData>({
    hostname: config.host,
    port: config.port,
    async fetch(req, srv) {
      const url = new URL(req.url);
      try {
        if (url.pathname === "/ws") return await upgrade(req, url, srv);
        return await routeHttp(req, url, http);
      } catch (err) {
        log.log("error", "http_failed", { path: url.pathname, ...describeError(err) });
        return refuse(500, "internal", "the server failed to answer");
      }
    },
    error(err) {
      log.log("error", "server_error", describeError(err));
      return refuse(500, "internal", "the server failed to answer");
    },
    websocket: {
      maxPayloadLength: config.maxPayload,
      backpressureLimit: config.slowConsumerBytes * BACKPRESSURE_FACTOR,
      idleTimeout: config.idleTimeoutSeconds,
      sendPings: true,
      perMessageDeflate: false,
      open(ws) {
        try {
          heartbeat.heard(ws, Date.now());
          ws.data.conn = hub.open(new BunPeer(ws), { ...ws.data.params, fixedNick: ws.data.fixedNick });
          log.log("debug", "conn_open", { conn: ws.data.conn.id, room: ws.data.params.room, ip: ws.data.ip });
          armExpiry(ws);
        } catch (err) {
          log.log("error", "open_failed", describeError(err));
          ws.close(CLOSE.internal, "internal error");
        }
      },
      message(ws, message) {
        heartbeat.heard(ws, Date.now());
        const conn = ws.data.conn;
        if (conn) hub.receive(conn, message);
      },
      pong(ws) {
        heartbeat.heard(ws, Date.now());
      },
      close(ws, code) {
        try {
          heartbeat.forget(ws);
          perIp.release(ws.data.ip);
          clearTimeout(ws.data.expiry);
          const conn = ws.data.conn;
          if (conn) hub.close(conn, code);
          log.log("debug", "conn_close", { conn: conn?.id, code });
        } catch (err) {
          log.log("error", "close_failed", describeError(err));
        }
      },
    },
  });

  const sweeper = setInterval(() => hub.sweep(), 60_000);
  sweeper.unref?.();
  const beater = setInterval(beat, config.heartbeatIntervalSeconds * 1000);
  beater.unref?.();
  const url = new URL(`http://${config.host}:${server.port}`);

  return {
    url,
    hub,
    server,
    async stop() {
      if (stopping) return;
      stopping = true;
      clearInterval(sweeper);
      clearInterval(beater);
      hub.shutdown();
      await server?.stop(true);
      hub.flush(true);
      store?.close();
      if (hub instanceof RedisHub) await hub.stop();
    },
  };
}

if (import.meta.main) {
  let running: RunningServer;
  try {
    const config = loadConfig(process.env, process.argv.slice(2));
    running = startServer(config);
    // Several processes over Redis: listen only once this one is registered there.
    if (running.hub instanceof RedisHub) await running.hub.ready;
  } catch (err) {
    console.error(err instanceof ConfigError ? `configuration error: ${err.message}` : err);
    process.exit(1);
  }
  console.log(`listening on ${running.url.origin}`);
  const shutdown = (signal: string) => {
    console.log(JSON.stringify({ t: new Date().toISOString(), level: "info", event: "shutdown", signal }));
    running.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  // Last line of defence: log and carry on rather than drop every user's connection.
  process.on("uncaughtException", (err) =>
    console.error(JSON.stringify({ level: "error", event: "uncaught", ...describeError(err) })),
  );
  process.on("unhandledRejection", (err) =>
    console.error(JSON.stringify({ level: "error", event: "unhandled_rejection", ...describeError(err) })),
  );
}
