/** The one Bun.serve entry: HTTP routes, the checks before the upgrade, and sockets handed to the chat logic. */
import type { Server, ServerWebSocket } from "bun";
import { CLOSE } from "./protocol";
import { TokenAuthority } from "./server/auth";
import { BunPeer } from "./server/bun-peer";
import { monotonicNow } from "./server/chat/clock";
import type { Connection } from "./server/chat/connection";
import { ChatHub } from "./server/chat/hub";
import { chatLimits } from "./server/chat/limits";
import { describeError, jsonLogger, type Logger } from "./server/chat/log";
import { Metrics } from "./server/chat/metrics";
import { answerCommandLine } from "./server/cli";
import { ClientAddresses } from "./server/client-address";
import { type Config, ConfigError, loadConfig } from "./server/config";
import { createEngine } from "./server/engines/choose";
import type { ChatStore } from "./server/engines/local/store";
import { RedisUnreachable } from "./server/engines/redis/redis-engine";
import { Heartbeat } from "./server/heartbeat";
import { type HttpContext, refuse, routeHttp } from "./server/http";
import { Identities } from "./server/identity";
import { ConnectRate, IpLimit } from "./server/ip-limit";
import { browserPage } from "./server/page";
import { type Admitted, admit } from "./server/upgrade";

interface SocketData extends Admitted {
  conn: Connection | undefined;
  expiry: ReturnType<typeof setTimeout> | undefined;
}

type Socket = ServerWebSocket<SocketData>;

export interface RunningServer {
  readonly url: URL;
  readonly hub: ChatHub;
  readonly server: Server<SocketData>;
  /**
   * Resolves once the engine can serve (at once for SQLite; once registered in Redis) and the key of
   * v2 identity tokens is loaded.
   */
  readonly ready: Promise<void>;
  /** Flushes pending writes, closes every socket with 1001 and lets the engine go. */
  stop(): Promise<void>;
}

export interface StartOptions {
  log?: Logger;
  /** Storage to use instead of opening DB_PATH: tests pass one that fails on demand. */
  store?: ChatStore;
  /** Key prefix in Redis: tests give each server its own. */
  redisPrefix?: string;
}

/** setTimeout's longest delay; token expiries further out are re-armed when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Bun drops frames silently past its limit; the hub closes slow readers long before that. */
const BACKPRESSURE_FACTOR = 4;

function isLogger(x: StartOptions | Logger): x is Logger {
  return typeof (x as Logger).log === "function";
}

export function startServer(config: Config, options: StartOptions | Logger = {}): RunningServer {
  const opts: StartOptions = isLogger(options) ? { log: options } : options;
  const log = opts.log ?? jsonLogger(config.logLevel, console.log);
  const startedAt = monotonicNow();
  const auth = config.authSecret === undefined ? undefined : new TokenAuthority(config.authSecret);
  const heartbeat = new Heartbeat<Socket>(config.heartbeatTimeoutSeconds * 1000);
  const perIp = new IpLimit(config.maxConnectionsPerIp);
  const connectRate = new ConnectRate(config.connectRatePerIp, config.connectBurstPerIp);
  const addresses = new ClientAddresses(config.trustedProxies);
  let server: Server<SocketData> | undefined;
  let upgrading = 0;
  let stopping = false;

  const metrics = new Metrics();
  const engine = createEngine(config, { log, metrics, store: opts.store, redisPrefix: opts.redisPrefix });
  const hub = new ChatHub({
    engine,
    limits: chatLimits(config),
    log,
    metrics,
    fanout: {
      publish(topic: string, data: string) {
        // 0: Bun dropped this frame for someone; close whoever is that far behind before the next one.
        if (server?.publish(topic, data) === 0) closeBackloggedSockets();
      },
    },
  });
  // v2 identity tokens exist only without AUTH_SECRET (with it, the access token names the user).
  const identities = auth ? undefined : new Identities(config.identitySecret, hub.ready, hub);
  const ready = identities ? Promise.all([hub.ready, identities.ready]).then(() => undefined) : hub.ready;
  // Whoever awaits `ready` sees a failure; a server nobody awaits (tests) must not leave it unhandled.
  ready.catch(() => undefined);
  const http: HttpContext = {
    hub,
    startedAt,
    page: browserPage,
    admin: { token: config.adminToken, hub, log },
    allowedOrigins: config.allowedOrigins,
  };
  const gate = {
    config,
    auth,
    perIp,
    connectRate,
    addresses,
    metrics,
    log,
    load: () => hub.connectionCount + upgrading,
    stopping: () => stopping,
    identities,
    users: hub,
  };

  async function upgrade(req: Request, url: URL, srv: Server<SocketData>): Promise<Response | undefined> {
    const peer = srv.requestIP(req)?.address ?? "unknown";
    const admitted = await admit(gate, req, url, peer);
    if (!admitted.ok) return admitted.response;
    upgrading++;
    try {
      const data: SocketData = { ...admitted.value, conn: undefined, expiry: undefined };
      if (srv.upgrade(req, { data })) return undefined;
    } finally {
      upgrading--;
    }
    perIp.release(admitted.value.client);
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
    const { dead, alive } = heartbeat.sweep(monotonicNow());
    for (const ws of dead) {
      heartbeat.forget(ws);
      log.log("info", "dead_peer_dropped", { conn: ws.data.conn?.id });
      ws.terminate();
    }
    for (const ws of alive) ws.ping();
    hub.enforceShares();
  }

  try {
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
          // Admitted although a check failed for the storage's sake: closed as the core closes what it cannot serve.
          if (ws.data.unchecked !== undefined) {
            ws.close(CLOSE.internal, ws.data.unchecked);
            return;
          }
          try {
            heartbeat.heard(ws, monotonicNow());
            const v2 = ws.data.v2;
            ws.data.conn = hub.open(new BunPeer(ws), {
              ...ws.data.params,
              fixedNick: ws.data.fixedNick,
              client: ws.data.client,
              v2,
            });
            log.log("debug", "conn_open", {
              conn: ws.data.conn.id,
              ...(v2 ? { protocol: 2, user: v2.userId, room: v2.room } : { room: ws.data.params.room }),
              ip: ws.data.ip,
            });
            armExpiry(ws);
          } catch (err) {
            log.log("error", "open_failed", describeError(err));
            ws.close(CLOSE.internal, "internal error");
          }
        },
        message(ws, message) {
          heartbeat.heard(ws, monotonicNow());
          const conn = ws.data.conn;
          if (conn) hub.receive(conn, message);
        },
        pong(ws) {
          heartbeat.heard(ws, monotonicNow());
        },
        close(ws, code) {
          try {
            heartbeat.forget(ws);
            perIp.release(ws.data.client);
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
  } catch (err) {
    void hub.stop();
    if ((err as { code?: string }).code === "EADDRINUSE")
      throw new ConfigError("PORT", `${config.port} is in use on ${config.host}; pick another with PORT`);
    throw err;
  }

  const sweeper = setInterval(() => hub.sweep(), 60_000);
  sweeper.unref?.();
  const beater = setInterval(beat, config.heartbeatIntervalSeconds * 1000);
  beater.unref?.();
  const url = new URL(`http://${config.host}:${server.port}`);

  return {
    url,
    hub,
    server,
    ready,
    async stop() {
      if (stopping) return;
      stopping = true;
      clearInterval(sweeper);
      clearInterval(beater);
      hub.shutdown();
      await server?.stop(true);
      await hub.stop();
    },
  };
}

if (import.meta.main) {
  // --help, --version, or a flag no setting has: answered before anything starts.
  answerCommandLine(process.argv.slice(2), Bun.isStandaloneExecutable ? process.execPath : "bun server.ts");
  let running: RunningServer | undefined;
  // Handlers first: a supervisor may signal as soon as it reads "listening", and without a handler
  // the default action would kill the process with nothing flushed.
  const shutdown = (signal: string) => {
    console.log(JSON.stringify({ t: new Date().toISOString(), level: "info", event: "shutdown", signal }));
    if (!running) process.exit(0);
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
  try {
    const config = loadConfig(process.env, process.argv.slice(2));
    running = startServer(config);
    // Several processes over Redis: say "listening" only once this one is registered there.
    await running.ready;
  } catch (err) {
    if (err instanceof RedisUnreachable) console.error(`configuration error: REDIS_URL: ${err.message}`);
    else console.error(err instanceof ConfigError ? `configuration error: ${err.message}` : err);
    process.exit(1);
  }
  console.log(`listening on ${running.url.origin}`);
}
