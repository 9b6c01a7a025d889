/** Servers started in-process on 127.0.0.1 with a free port, an in-memory database and no logs. */
import { type RunningServer, type StartOptions, startServer } from "../../server";

export type { StartOptions };

import { silentLogger } from "../../server/chat/log";
import { loadConfig } from "../../server/config";

const running = new Set<RunningServer>();

/**
 * Which engine a test server runs on: the local one, Redis at `url` (a private redis-server), with
 * its rooms spread over `partitions` hash tags (the cluster layout) when given, or a private Redis
 * Cluster (`seeds`: REDIS_CLUSTER's value).
 */
export type TestEngine =
  | { kind: "local" }
  | { kind: "redis"; url: string; partitions?: number }
  | { kind: "cluster"; seeds: string };

let servers = 0;

/**
 * Starts a server on `engine`. Over Redis each server gets its own key prefix, except that servers
 * given the same DB_PATH share one: a "restart" then finds what the first one stored.
 */
export function startTestServerOn(
  engine: TestEngine,
  env: Record<string, string> = {},
  options: StartOptions = {},
): RunningServer {
  if (engine.kind === "local") return startTestServer(env, options);
  const redisPrefix = env.DB_PATH ? `db:${env.DB_PATH}:` : `t${process.pid}-${++servers}:`;
  const redisEnv: Record<string, string> =
    engine.kind === "cluster" ? { REDIS_CLUSTER: engine.seeds } : { REDIS_URL: engine.url };
  if (engine.kind === "redis" && engine.partitions !== undefined)
    redisEnv.REDIS_PARTITIONS = String(engine.partitions);
  return startTestServer({ ...env, ...redisEnv }, { redisPrefix, ...options });
}

/**
 * Starts a server; `env` overrides the test defaults with the variables of shared/PROTOCOL.md, and
 * `options` may pass a logger that collects lines or a store that fails on demand.
 */
export function startTestServer(env: Record<string, string> = {}, options: StartOptions = {}): RunningServer {
  const config = loadConfig({
    PORT: "0",
    HOST: "127.0.0.1",
    DB_PATH: ":memory:",
    // Tests drive many frames fast; the limits under test set their own values.
    FRAME_RATE_LIMIT: "0",
    CONTROL_RATE_LIMIT: "0",
    CONNECT_RATE_PER_IP: "0",
    ...env,
  });
  const server = startServer(config, { log: silentLogger, ...options });
  running.add(server);
  return server;
}

/** Stops one server (idempotent). */
export async function stopTestServer(server: RunningServer): Promise<void> {
  running.delete(server);
  await server.stop();
}

/** For afterEach: stops every server a test left running. */
export async function stopAllServers(): Promise<void> {
  await Promise.all([...running].map(stopTestServer));
}

export function wsUrl(server: RunningServer | URL): URL {
  const base = server instanceof URL ? server : server.url;
  return new URL(`ws://${base.host}/ws`);
}
