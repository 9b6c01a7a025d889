/**
 * The engine on Deno, chosen as on Bun (server/engines/choose.ts): the local one (SQLite through
 * node:sqlite, or memory), or Redis Cluster through ioredis (REDIS_CLUSTER). One Redis (REDIS_URL)
 * goes through Bun's own Redis client, which Deno lacks, so it stops the Deno server at start.
 */
import type { Connection } from "../chat/connection";
import type { Engine } from "../chat/engine";
import { type Config, ConfigError } from "../config";
import { createEngine, type EngineDeps } from "../engines/choose";

export function createDenoEngine(config: Config, deps: EngineDeps): Engine<Connection> {
  if (config.redisUrl !== undefined) {
    throw new ConfigError(
      "REDIS_URL",
      "one Redis is reached through Bun's Redis client, which Deno does not have: start several " +
        "processes with bun server.ts, or use a Redis Cluster (REDIS_CLUSTER) on Deno, or unset " +
        "REDIS_URL for one Deno process on SQLite",
    );
  }
  return createEngine(config, deps);
}
