/** The one Bun.serve entry: HTTP routes, the checks before the upgrade, and sockets handed to the chat logic. */
import type { Server, ServerWebSocket } from "bun";
import { CLOSE, type ConnectParams, parseConnectQuery } from "./protocol";
import { TokenAuthority } from "./server/auth";
import { BunPeer } from "./server/bun-peer";
import { type Config, ConfigError, loadConfig } from "./server/config";
import { type HttpContext, refuse, routeHttp } from "./server/http";
import { ChatHub, type Connection } from "./server/hub";
import { describeError, jsonLogger, type Logger } from "./server/log";
import { originAllowed } from "./server/origin";
import { browserPage } from "./server/page";
import { SqliteStore } from "./server/sqlite-store";

interface SocketData {
  params: ConnectParams;
  fixedNick: string | undefined;
  tokenExpiresAt: number | undefined;
  conn: Connection | undefined;
  expiry: ReturnType<typeof setTimeout> | undefined;
}

export interface RunningServer {
  readonly url: URL;
  readonly hub: ChatHub;
  readonly server: Server<SocketData>;
  /** Flushes pending writes, closes every socket with 1001 and the database. */
  stop(): Promise<void>;
}

/** setTimeout's longest delay; token expiries further out are re-armed when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Past Bun's backpressure limit frames are dropped silently, which would leave a gap in a reader's
 * stream; a reader this far behind is closed with 1008 first (it can come back with `since`).
 */
const BACKPRESSURE_LIMIT = 64 * 1024 * 1024;
const SLOW_CONSUMER_BYTES = 8 * 1024 * 1024;
const SLOW_CONSUMER_CHECK_MS = 100;

function openStore(path: string): SqliteStore {
  try {
    return new SqliteStore(path);
  } catch (err) {
    throw new ConfigError("DB_PATH", `cannot open ${path}: ${describeError(err).error}`);
  }
}

export function startServer(
  config: Config,
  log: Logger = jsonLogger(config.logLevel, console.log),
): RunningServer {
  if (config.dbPath !== ":memory:") {
    const dir = config.dbPath.replace(/[^/]*$/, "");
    if (dir) require("node:fs").mkdirSync(dir, { recursive: true });
  }
  const store = openStore(config.dbPath);
  const startedAt = Date.now();
  const auth = config.authSecret === undefined ? undefined : new TokenAuthority(config.authSecret);
  let server: Server<SocketData> | undefined;
  const sockets = new Set<ServerWebSocket<SocketData>>();
  let upgrading = 0;
  let stopping = false;

  const hub = new ChatHub({
    store,
    fanout: {
      publish(topic, data) {
        // 0: some subscriber is past the limit and lost this frame; it must not see the next one.
        if (server?.publish(topic, data) === 0) closeSlowConsumers(BACKPRESSURE_LIMIT);
      },
    },
    limits: {
      rateLimit: config.rateLimit,
      rateBurst: config.rateBurst,
      floodCloseAfter: config.floodCloseAfter,
      resumeTtlMs: config.resumeTtlSeconds * 1000,
    },
    schedule: (fn) => setImmediate(fn),
    log,
  });
  const http: HttpContext = { hub, store, startedAt, page: browserPage };

  async function upgrade(req: Request, url: URL, srv: Server<SocketData>): Promise<Response | undefined> {
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return refuse(400, "bad_request", "expected a WebSocket upgrade");
    }
    if (stopping) return refuse(503, "server_busy", "the server is shutting down");
    if (hub.connectionCount + upgrading >= config.maxConnections) {
      hub.metrics.refusal("server_busy");
      return refuse(503, "server_busy", "the server is at its connection limit; try again later");
    }
    const parsed = parseConnectQuery(url.searchParams);
    if (!parsed.ok) {
      hub.metrics.refusal(parsed.error.code);
      return refuse(400, parsed.error.code, parsed.error.message);
    }
    if (!originAllowed(req.headers.get("origin"), req.headers.get("host"), config.allowedOrigins)) {
      hub.metrics.refusal("forbidden");
      return refuse(403, "forbidden", "this Origin may not connect");
    }
    let fixedNick: string | undefined;
    let tokenExpiresAt: number | undefined;
    if (auth) {
      const token = parsed.value.token;
      const verified = token === undefined ? undefined : await auth.verify(token, Date.now() / 1000);
      if (!verified?.ok) {
        hub.metrics.refusal("unauthorized");
        return refuse(401, "unauthorized", verified ? verified.reason : "a token is required");
      }
      fixedNick = verified.claims.nick;
      tokenExpiresAt = verified.claims.exp * 1000;
    }
    upgrading++;
    try {
      const data: SocketData = {
        params: parsed.value,
        fixedNick,
        tokenExpiresAt,
        conn: undefined,
        expiry: undefined,
      };
      if (srv.upgrade(req, { data })) return undefined;
    } finally {
      upgrading--;
    }
    return refuse(400, "bad_request", "the WebSocket upgrade failed");
  }

  /** Closes with 1008 every socket with more than `limit` bytes still unsent. */
  function closeSlowConsumers(limit: number): void {
    for (const ws of sockets) {
      if (ws.getBufferedAmount() <= limit) continue;
      sockets.delete(ws);
      ws.close(CLOSE.policy, "too slow to keep up");
    }
  }

  function armExpiry(ws: ServerWebSocket<SocketData>): void {
    const at = ws.data.tokenExpiresAt;
    if (at === undefined) return;
    const delay = at - Date.now();
    ws.data.expiry = setTimeout(
      () => (delay > MAX_TIMER_MS ? armExpiry(ws) : ws.close(1008, "access token expired")),
      Math.min(Math.max(0, delay), MAX_TIMER_MS),
    );
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
      backpressureLimit: BACKPRESSURE_LIMIT,
      idleTimeout: config.idleTimeoutSeconds,
      sendPings: true,
      perMessageDeflate: false,
      open(ws) {
        try {
          sockets.add(ws);
          ws.data.conn = hub.open(new BunPeer(ws), { ...ws.data.params, fixedNick: ws.data.fixedNick });
          armExpiry(ws);
        } catch (err) {
          log.log("error", "open_failed", describeError(err));
          ws.close(1011, "internal error");
        }
      },
      message(ws, message) {
        const conn = ws.data.conn;
        if (conn) hub.receive(conn, message);
      },
      close(ws, code) {
        try {
          sockets.delete(ws);
          clearTimeout(ws.data.expiry);
          const conn = ws.data.conn;
          if (conn) hub.close(conn, code);
        } catch (err) {
          log.log("error", "close_failed", describeError(err));
        }
      },
    },
  });

  const sweeper = setInterval(() => hub.sweep(), 60_000);
  sweeper.unref?.();
  const slowSweeper = setInterval(() => closeSlowConsumers(SLOW_CONSUMER_BYTES), SLOW_CONSUMER_CHECK_MS);
  slowSweeper.unref?.();
  const url = new URL(`http://${config.host}:${server.port}`);

  return {
    url,
    hub,
    server,
    async stop() {
      if (stopping) return;
      stopping = true;
      clearInterval(sweeper);
      clearInterval(slowSweeper);
      hub.shutdown();
      await server?.stop(true);
      hub.flush();
      store.close();
    },
  };
}

if (import.meta.main) {
  let running: RunningServer;
  try {
    const config = loadConfig(process.env, process.argv.slice(2));
    running = startServer(config);
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
}
