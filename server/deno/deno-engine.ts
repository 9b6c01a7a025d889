/**
 * The engine on Deno, chosen as on Bun (server/engines/choose.ts): the local one (SQLite through
 * node:sqlite, or memory), one Redis (REDIS_URL) or a Redis Cluster (REDIS_CLUSTER), both through
 * ioredis there (wire-client.ts picks it where Bun's own client is missing).
 */
import type { Connection } from "../chat/connection";
import type { Engine } from "../chat/engine";
import type { Config } from "../config";
import { createEngine, type EngineDeps } from "../engines/choose";

export function createDenoEngine(config: Config, deps: EngineDeps): Engine<Connection> {
  return createEngine(config, deps);
}
