/**
 * The engine on Deno: the local one (SQLite through node:sqlite, or memory), chosen as on Bun. The
 * Redis engine needs Bun's Redis client, so REDIS_URL and REDIS_CLUSTER stop the Deno server at start.
 */
import type { Connection } from "../chat/connection";
import type { Engine } from "../chat/engine";
import { type Config, ConfigError } from "../config";
import { createEngine, type EngineDeps } from "../engines/choose";

export function createDenoEngine(config: Config, deps: EngineDeps): Engine<Connection> {
  if (config.redisUrl !== undefined || config.redisCluster.length > 0) {
    const name = config.redisUrl !== undefined ? "REDIS_URL" : "REDIS_CLUSTER";
    throw new ConfigError(
      name,
      "the Redis engine does not run on Deno yet (it uses Bun's Redis client): start several " +
        `processes with bun server.ts, or unset ${name} for one Deno process on SQLite`,
    );
  }
  return createEngine(config, deps);
}
