/** Configuration from the environment (and `--name value` flags): parsed once, failing fast on bad values. */
import { LIMITS } from "../protocol";

export interface Config {
  port: number;
  host: string;
  dbPath: string;
  dbSync: "off" | "normal" | "full";
  redisUrl: string | undefined;
  /** With REDIS_URL: a process silent this long is presumed dead and its users leave every room. */
  presenceTtlSeconds: number;
  /** Exact browser origins allowed; empty means same host only. */
  allowedOrigins: string[];
  authSecret: string | undefined;
  rateLimit: number;
  rateBurst: number;
  maxConnections: number;
  maxConnectionsPerIp: number;
  maxPayload: number;
  controlRateLimit: number;
  controlRateBurst: number;
  frameRateLimit: number;
  frameRateBurst: number;
  floodCloseAfter: number;
  slowConsumerBytes: number;
  presenceBatchMs: number;
  presenceBatchMinMembers: number;
  heartbeatIntervalSeconds: number;
  heartbeatTimeoutSeconds: number;
  resumeTtlSeconds: number;
  idleTimeoutSeconds: number;
  logLevel: "debug" | "info" | "warn" | "error";
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    detail: string,
  ) {
    super(`${variable}: ${detail}`);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

/** `--port 8080` and `--port=8080` set PORT; flags win over the environment. */
export function flagsToEnv(argv: readonly string[]): Env {
  const env: Env = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith("--")) continue;
    const eq = arg.indexOf("=");
    const name = (eq === -1 ? arg.slice(2) : arg.slice(2, eq)).toUpperCase().replaceAll("-", "_");
    if (eq !== -1) env[name] = arg.slice(eq + 1);
    else if (i + 1 < argv.length) env[name] = argv[++i];
    else throw new ConfigError(name, "flag has no value");
  }
  return env;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === "") return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `expected a whole number, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `expected ${min}..${max}, got ${n}`);
  return n;
}

function decimal(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === "") return fallback;
  if (!/^\d+(\.\d+)?$/.test(raw)) throw new ConfigError(name, `expected a number, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `expected ${min}..${max}, got ${n}`);
  return n;
}

function origins(raw: string | undefined): string[] {
  if (raw === undefined || raw.trim() === "") return [];
  return raw.split(",").map((entry) => {
    const origin = entry.trim();
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      throw new ConfigError("ALLOWED_ORIGINS", `"${origin}" is not an origin like https://chat.example`);
    }
    if (url.origin !== origin) {
      throw new ConfigError("ALLOWED_ORIGINS", `"${origin}" must be written exactly as ${url.origin}`);
    }
    return origin;
  });
}

const LEVELS = ["debug", "info", "warn", "error"] as const;
const SYNCS = ["off", "normal", "full"] as const;

export function loadConfig(env: Env, argv: readonly string[] = []): Config {
  const all = { ...env, ...flagsToEnv(argv) };
  const host = all.HOST?.trim() || "0.0.0.0";
  const dbPath = all.DB_PATH?.trim() || "data/chat.db";
  const redisUrl = all.REDIS_URL?.trim() || undefined;
  if (redisUrl !== undefined && !/^(redis|rediss|valkey|valkeys):\/\/[^\s]+$/.test(redisUrl)) {
    throw new ConfigError("REDIS_URL", `expected a URL like redis://host:6379, got "${redisUrl}"`);
  }
  const authSecret = all.AUTH_SECRET === undefined || all.AUTH_SECRET === "" ? undefined : all.AUTH_SECRET;
  if (authSecret !== undefined && authSecret.length < 16) {
    throw new ConfigError("AUTH_SECRET", "use at least 16 characters");
  }
  const dbSync = (all.DB_SYNC?.trim().toLowerCase() || "normal") as Config["dbSync"];
  if (!SYNCS.includes(dbSync)) throw new ConfigError("DB_SYNC", `expected one of ${SYNCS.join(", ")}`);
  const logLevel = (all.LOG_LEVEL?.trim() || "info") as Config["logLevel"];
  if (!LEVELS.includes(logLevel)) throw new ConfigError("LOG_LEVEL", `expected one of ${LEVELS.join(", ")}`);
  return {
    port: integer(all, "PORT", 3000, 0, 65535),
    host,
    dbPath,
    dbSync,
    redisUrl,
    presenceTtlSeconds: decimal(all, "PRESENCE_TTL_SECONDS", 5, 0.5, 3600),
    allowedOrigins: origins(all.ALLOWED_ORIGINS),
    authSecret,
    rateLimit: decimal(all, "RATE_LIMIT", 10, 0, 1_000_000),
    rateBurst: integer(all, "RATE_BURST", 20, 1, 1_000_000),
    maxConnections: integer(all, "MAX_CONNECTIONS", 100_000, 1, 10_000_000),
    maxConnectionsPerIp: integer(all, "MAX_CONNECTIONS_PER_IP", 1000, 1, 10_000_000),
    maxPayload: integer(all, "MAX_PAYLOAD", LIMITS.payloadDefault, 1024, 16 * 1024 * 1024),
    controlRateLimit: decimal(all, "CONTROL_RATE_LIMIT", 5, 0, 1_000_000),
    controlRateBurst: integer(all, "CONTROL_RATE_BURST", 20, 1, 1_000_000),
    frameRateLimit: decimal(all, "FRAME_RATE_LIMIT", 100, 0, 1_000_000),
    frameRateBurst: integer(all, "FRAME_RATE_BURST", 200, 1, 1_000_000),
    floodCloseAfter: integer(all, "FLOOD_CLOSE_AFTER", 50, 1, 1_000_000),
    presenceBatchMs: integer(all, "PRESENCE_BATCH_MS", 25, 0, 1000),
    presenceBatchMinMembers: integer(all, "PRESENCE_BATCH_MIN_MEMBERS", 50, 1, 10_000_000),
    slowConsumerBytes: integer(all, "SLOW_CONSUMER_BYTES", 8 * 1024 * 1024, 64 * 1024, 1024 * 1024 * 1024),
    heartbeatIntervalSeconds: decimal(all, "HEARTBEAT_INTERVAL_SECONDS", 10, 0.05, 3600),
    heartbeatTimeoutSeconds: decimal(all, "HEARTBEAT_TIMEOUT_SECONDS", 30, 0.1, 86400),
    resumeTtlSeconds: integer(all, "RESUME_TTL_SECONDS", 900, 600, 30 * 86400),
    idleTimeoutSeconds: integer(all, "IDLE_TIMEOUT_SECONDS", 60, 0, 960),
    logLevel,
  };
}
