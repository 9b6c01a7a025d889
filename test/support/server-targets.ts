/**
 * The servers a socket-level suite runs against, behind one factory: in this process on Bun (the
 * local engine, or Redis), or the Deno entry as a child process. A suite sees a URL, the server's
 * connection count and a graceful stop, whatever it runs on.
 */

import type { RunningServer } from "../../server";
import { type DenoServer, startDenoServer } from "./deno-server";
import { startTestServerOn, stopTestServer, type TestEngine } from "./test-server";
import { sleep } from "./timing";

export interface ServerUnderTest {
  readonly url: URL;
  /**
   * Where it runs, for the few cases where Deno differs (README, "On Deno"): a client still sending
   * when closed may see 1006, and a peer that never answers the closing handshake keeps its TCP
   * connection until Deno's idle timeout.
   */
  readonly runtime: "bun" | "deno";
  /** Open connections as the server counts them (Deno's through GET /healthz). */
  connectionCount(): Promise<number>;
  /** Stores what is pending, closes every socket with 1001, and is gone. */
  stop(): Promise<void>;
}

/** Starts a fresh server; `env` overrides the test defaults (test-server.ts, deno-server.ts). */
export type ServerFactory = (env?: Record<string, string>) => Promise<ServerUnderTest>;

/** A server in this process (Bun.serve) on `engine`. */
export function onBun(engine: () => TestEngine): ServerFactory {
  return async (env = {}) => {
    const server = startTestServerOn(engine(), env);
    // Registered (Redis) and the identity key loaded: what a process says "listening" after.
    await server.ready;
    return inProcess(server);
  };
}

export function inProcess(server: RunningServer): ServerUnderTest {
  return {
    url: server.url,
    runtime: "bun",
    connectionCount: async () => server.hub.connectionCount,
    stop: () => stopTestServer(server),
  };
}

const deno = new Set<DenoServer>();

/** The Deno entry (server.deno.ts) as a child process, as `npm run start:deno` runs it. */
export const onDeno: ServerFactory = async (env = {}) => {
  const server = await startDenoServer(env);
  deno.add(server);
  return {
    url: server.url,
    runtime: "deno",
    async connectionCount() {
      const res = await fetch(new URL("/healthz", server.url));
      return ((await res.json()) as { connections: number }).connections;
    },
    async stop() {
      deno.delete(server);
      const code = await server.stop();
      if (code !== 0) throw new Error(`the Deno server exited with ${code}: ${server.output.join("")}`);
    },
  };
};

/** For afterEach: stops every Deno server a test left running (servers in this process: stopAllServers). */
export async function stopDenoServers(): Promise<void> {
  const left = [...deno];
  deno.clear();
  await Promise.all(left.map((s) => s.stop()));
}

/** Polls the server's connection count until it is `n`, or fails naming `what`. */
export async function untilConnections(
  server: ServerUnderTest,
  n: number,
  what: string,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await server.connectionCount()) !== n) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
