/** The one place the engine is chosen from configuration: Redis with REDIS_URL, else SQLite (or memory). */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { Connection } from "../chat/connection";
import type { Engine } from "../chat/engine";
import { chatLimits } from "../chat/limits";
import { describeError, type Logger } from "../chat/log";
import type { Metrics } from "../chat/metrics";
import { type Config, ConfigError } from "../config";
import { LocalEngine } from "./local/local-engine";
import { SqliteStore } from "./local/sqlite-store";
import type { ChatStore } from "./local/store";
import { RedisEngine } from "./redis/redis-engine";

export interface EngineDeps {
  log: Logger;
  metrics: Metrics;
  /** Storage to use instead of opening DB_PATH: tests pass one that fails on demand. */
  store?: ChatStore | undefined;
  /** Key prefix in Redis (tests give each server its own). */
  redisPrefix?: string | undefined;
}

export function createEngine(config: Config, deps: EngineDeps): Engine<Connection> {
  const limits = chatLimits(config);
  const schedule = (fn: () => void) => setImmediate(fn);
  if (config.redisUrl !== undefined) {
    return new RedisEngine<Connection>({
      url: config.redisUrl,
      prefix: deps.redisPrefix,
      resumeTtlMs: limits.resumeTtlMs,
      dedupeWindow: limits.dedupeWindow,
      presenceTtlMs: config.presenceTtlSeconds * 1000,
      commandTimeoutMs: config.redisCommandTimeoutMs,
      schedule,
      log: deps.log,
      metrics: deps.metrics,
    });
  }
  return new LocalEngine<Connection>({
    store: deps.store ?? openStore(config),
    resumeTtlMs: limits.resumeTtlMs,
    dedupeWindow: limits.dedupeWindow,
    schedule,
    log: deps.log,
    metrics: deps.metrics,
  });
}

function openStore(config: Config): SqliteStore {
  const path = config.dbPath;
  try {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    return new SqliteStore(path, Date.now(), config.dbSync);
  } catch (err) {
    throw new ConfigError("DB_PATH", `cannot open ${path}: ${describeError(err).error}`);
  }
}
