/** Servers started in-process on 127.0.0.1 with a free port, an in-memory database and no logs. */
import { type RunningServer, type StartOptions, startServer } from "../../server";
import { silentLogger } from "../../server/chat/log";
import { loadConfig } from "../../server/config";

const running = new Set<RunningServer>();

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
