/** The one place the engine is chosen from configuration: Redis with REDIS_URL, else SQLite (or memory). */
import { mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import type { Connection } from "../chat/connection";
import type { Engine } from "../chat/engine";
import { chatLimits } from "../chat/limits";
import { describeError, type Logger } from "../chat/log";
import type { Metrics } from "../chat/metrics";
import { type Config, ConfigError } from "../config";
import { LocalEngine } from "./local/local-engine";
import { DatabaseDamaged, DatabaseInUse, SqliteStore } from "./local/sqlite-store";
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
  if (config.redisUrl !== undefined || config.redisCluster.length > 0) {
    return new RedisEngine<Connection>({
      url: config.redisUrl,
      cluster: config.redisCluster,
      clusterLogin: {
        username: config.redisClusterUsername,
        password: config.redisClusterPassword,
        tls:
          config.redisClusterTls === "on"
            ? { ca: config.redisClusterTlsCa && readFileSync(config.redisClusterTlsCa, "utf8") }
            : undefined,
      },
      partitions: config.redisPartitions || undefined,
      minReplicas: config.redisMinReplicas,
      prefix: deps.redisPrefix,
      resumeTtlMs: limits.resumeTtlMs,
      dedupeWindow: limits.dedupeWindow,
      presenceTtlMs: config.presenceTtlSeconds * 1000,
      commandTimeoutMs: config.redisCommandTimeoutMs,
      retentionMaxMessages: config.retentionMaxMessages,
      retentionMaxAgeMs: config.retentionMaxAgeDays * DAY_MS,
      maxSessionsPerClient: config.maxSessionsPerIp,
      schedule,
      log: deps.log,
      metrics: deps.metrics,
    });
  }
  return new LocalEngine<Connection>({
    store: deps.store ?? openStore(config, deps.log),
    resumeTtlMs: limits.resumeTtlMs,
    dedupeWindow: limits.dedupeWindow,
    maxSessionsPerClient: config.maxSessionsPerIp,
    schedule,
    log: deps.log,
    metrics: deps.metrics,
    retention: {
      maxMessages: config.retentionMaxMessages,
      maxAgeMs: config.retentionMaxAgeDays * DAY_MS,
    },
  });
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Opens DB_PATH, refusing to start when another server process has it open or when it is damaged
 * (the README's "A damaged database" tells how to recover).
 */
function openStore(config: Config, log: Logger): SqliteStore {
  const path = config.dbPath;
  let store: SqliteStore;
  try {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    store = new SqliteStore(path, Date.now(), config.dbSync);
  } catch (err) {
    if (err instanceof DatabaseInUse) throw new ConfigError("DB_PATH", err.message);
    if (err instanceof DatabaseDamaged) {
      throw new ConfigError(
        "DB_PATH",
        `${err.message}; nothing was written to it. To recover what it holds (see the README): ` +
          `keep a copy of it and of ${path}-wal, run sqlite3 ${path} ".recover" | sqlite3 recovered.db, ` +
          `check that sqlite3 recovered.db "PRAGMA integrity_check" says ok, then remove ${path}-wal and ` +
          `${path}-shm and put recovered.db in place of ${path}. Or restore a backup`,
      );
    }
    throw new ConfigError("DB_PATH", `cannot open ${path}: ${describeError(err).error}`);
  }
  if (store.checkMs !== undefined) log.log("info", "db_checked", { path, ms: Math.round(store.checkMs) });
  return store;
}
