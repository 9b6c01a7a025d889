/** Bun's Redis client set up for the chat: fail fast while Redis is away, reconnect on its own. */
import { RedisClient } from "bun";

/**
 * Commands sent while Redis is unreachable fail at once instead of queueing: a chat then gets an
 * `internal` error the client can retry (dedupe makes the retry safe), and nothing waits forever.
 */
export function connectRedis(url: string): RedisClient {
  return new RedisClient(url, {
    enableOfflineQueue: false,
    autoReconnect: true,
    maxRetries: 1_000_000,
    connectionTimeout: 2000,
  });
}

/**
 * Runs a script with EVAL. EVALSHA would save bytes, but after a Redis restart (script cache empty)
 * its NOSCRIPT retries could reorder pipelined writes; EVAL keeps them in the order they were sent.
 */
export function runScript(
  client: RedisClient,
  script: string,
  args: ReadonlyArray<string | number>,
): Promise<unknown> {
  return client.send("EVAL", [script, "0", ...args.map(String)]);
}

/** Stream ids ("ms-n") compared as numbers. */
export function streamIdAfter(a: string, b: string): boolean {
  const [am = "0", an = "0"] = a.split("-");
  const [bm = "0", bn = "0"] = b.split("-");
  const ams = Number(am);
  const bms = Number(bm);
  return ams !== bms ? ams > bms : Number(an) > Number(bn);
}
