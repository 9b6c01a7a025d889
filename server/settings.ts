/** Every configuration setting once: its variable, parser, default and README line; config.ts and README.md follow it. */
import { LIMITS } from "../protocol";
import {
  addresses,
  credential,
  decimal,
  existingFile,
  type HostPort,
  hostPorts,
  integer,
  oneOf,
  origins,
  redisUrl,
  type Setting,
  secret,
  text,
} from "./settings-parsers";

/** Every setting, parsed: the shape the rest of the server reads. */
export interface Config {
  port: number;
  host: string;
  dbPath: string;
  dbSync: "off" | "normal" | "full";
  redisUrl: string | undefined;
  /** Seed nodes of a Redis Cluster; empty when there is none. */
  redisCluster: HostPort[];
  /** Credentials and TLS of the cluster's nodes. */
  redisClusterUsername: string | undefined;
  redisClusterPassword: string | undefined;
  redisClusterTls: "off" | "on";
  /** A PEM file of the CA that signed the nodes' certificates (else the system's). */
  redisClusterTlsCa: string | undefined;
  /** Replicas that must hold a write before it is acked. */
  redisMinReplicas: number;
  /** Hash-tag partitions of the rooms in Redis; 0: 16 on a cluster, 1 on one Redis. */
  redisPartitions: number;
  /** With REDIS_URL: a process silent this long is presumed dead and its users leave every room. */
  presenceTtlSeconds: number;
  /** Exact browser origins allowed; empty means same host only. */
  allowedOrigins: string[];
  authSecret: string | undefined;
  /** Signs the identity tokens minted for v2 users. */
  identitySecret: string | undefined;
  /** Bearer token of the admin API; unset, the API refuses everyone. */
  adminToken: string | undefined;
  rateLimit: number;
  rateBurst: number;
  maxConnections: number;
  maxConnectionsPerIp: number;
  /** New connections a second from one client address, and their burst. */
  connectRatePerIp: number;
  connectBurstPerIp: number;
  /** Resumable sessions one client address may hold; past it the oldest ended ones are forgotten. */
  maxSessionsPerIp: number;
  /** Unsent bytes all connections of one client address may hold together. */
  bufferedBytesPerIp: number;
  /** History bytes a second one client address may read (history, welcomes with since), and their burst. */
  historyBytesPerSecond: number;
  historyBytesBurst: number;
  /** Messages kept per room (0: all) and their age in days (0: any). */
  retentionMaxMessages: number;
  retentionMaxAgeDays: number;
  /** Longest a Redis command may take before it counts as failed. */
  redisCommandTimeoutMs: number;
  /** Addresses and CIDRs, as written, whose X-Forwarded-For is believed; empty trusts no one. */
  trustedProxies: string[];
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
  maxRoomsPerUser: number;
  /** 0: an edit is allowed at any time. */
  editWindowSeconds: number;
  logLevel: "debug" | "info" | "warn" | "error";
}

/** Typed by `Config`, so a field without a setting (or a setting without a field) does not compile. */
type Settings = { readonly [K in keyof Config]: Setting<Config[K]> };

/** In README order. */
export const SETTINGS: Settings = {
  port: { env: "PORT", ...integer(0, 65535), default: 3000, meaning: "TCP port; `0` picks a free one" },
  host: { env: "HOST", ...text, default: "0.0.0.0", meaning: "address to bind" },
  dbPath: {
    env: "DB_PATH",
    ...text,
    default: "data/chat.db",
    meaning: "SQLite file for messages; `:memory:` keeps nothing",
  },
  dbSync: {
    env: "DB_SYNC",
    ...oneOf(["off", "normal", "full"], true),
    default: "normal",
    meaning:
      "SQLite's `synchronous` (WAL mode): `off`, `normal` or `full`. Every value keeps an acked message through a crash of the server process; `normal` also keeps the file intact if the machine crashes; `full` also keeps the last acked messages then; `off` writes about 2.5x faster",
  },
  redisUrl: {
    env: "REDIS_URL",
    ...redisUrl,
    default: undefined,
    meaning:
      "`redis://host:port`: processes sharing this Redis form one chat server (see below); `DB_PATH` is then unused",
    shown: "unset: one process",
  },
  redisCluster: {
    env: "REDIS_CLUSTER",
    ...hostPorts,
    default: [],
    meaning: "comma-separated `host:port` seed nodes of a Redis Cluster (instead of `REDIS_URL`)",
    shown: "unset",
  },
  redisClusterUsername: {
    env: "REDIS_CLUSTER_USERNAME",
    ...credential,
    default: undefined,
    meaning: "ACL user the processes log in to `REDIS_CLUSTER`'s nodes as",
    shown: "unset: Redis's `default` user",
  },
  redisClusterPassword: {
    env: "REDIS_CLUSTER_PASSWORD",
    ...credential,
    default: undefined,
    meaning: "password of `REDIS_CLUSTER`'s nodes (their `requirepass`, or the ACL user's)",
    shown: "unset: none",
  },
  redisClusterTls: {
    env: "REDIS_CLUSTER_TLS",
    ...oneOf(["off", "on"]),
    default: "off",
    meaning: "`on`: connect to `REDIS_CLUSTER`'s nodes over TLS (their `tls-cluster yes` ports)",
  },
  redisClusterTlsCa: {
    env: "REDIS_CLUSTER_TLS_CA",
    ...existingFile,
    default: undefined,
    meaning: "PEM file of the CA that signed the nodes' certificates, with `REDIS_CLUSTER_TLS=on`",
    shown: "unset: the system's CAs",
  },
  redisCommandTimeoutMs: {
    env: "REDIS_COMMAND_TIMEOUT_MS",
    ...integer(50, 600_000),
    default: 2000,
    meaning:
      "longest a Redis command may take before it counts as failed (a hung Redis is an outage, not a wait)",
  },
  redisMinReplicas: {
    env: "REDIS_MIN_REPLICAS",
    ...integer(0, 16),
    default: 0,
    meaning:
      "replicas that must hold a chat or a change before its `ack` (`WAIT`): with 1, a primary killed under traffic loses nothing acknowledged",
  },
  redisPartitions: {
    env: "REDIS_PARTITIONS",
    ...integer(0, 1024),
    default: 0,
    meaning:
      "hash-tag partitions the rooms' keys are spread over (a room's keys share one slot); `0`: 16 with `REDIS_CLUSTER`, 1 (the plain layout) with `REDIS_URL`. More spreads a cluster's load more evenly; each costs every process a heartbeat and a blocking reader",
  },
  presenceTtlSeconds: {
    env: "PRESENCE_TTL_SECONDS",
    ...decimal(0.5, 3600),
    default: 5,
    meaning: "with `REDIS_URL`: a process silent this long is presumed dead and its users leave every room",
  },
  allowedOrigins: {
    env: "ALLOWED_ORIGINS",
    ...origins,
    default: [],
    meaning: "comma-separated browser origins allowed to connect, matched exactly",
    shown: "unset: same scheme, host and port only",
  },
  authSecret: {
    env: "AUTH_SECRET",
    ...secret,
    default: undefined,
    meaning: "when set, `token` (an HS256 JWT with `nick` and `exp`) is required",
    shown: "unset: open",
  },
  identitySecret: {
    env: "IDENTITY_SECRET",
    ...secret,
    default: undefined,
    meaning: "key (16+ characters) that signs the `identityToken` minted for each new v2 user",
    shown: "unset",
  },
  adminToken: {
    env: "ADMIN_TOKEN",
    ...secret,
    default: undefined,
    meaning: "bearer token (16+ characters) of the HTTP admin API (v2)",
    shown: "unset: the API answers 401",
  },
  rateLimit: {
    env: "RATE_LIMIT",
    ...decimal(0, 1_000_000),
    default: 10,
    meaning: "chat messages per second per connection; `0` turns limiting off",
  },
  rateBurst: {
    env: "RATE_BURST",
    ...integer(1, 1_000_000),
    default: 20,
    meaning: "messages a connection may send at once before the rate applies",
  },
  maxConnections: {
    env: "MAX_CONNECTIONS",
    ...integer(1, 10_000_000),
    default: 100_000,
    meaning: "connections per process before `503 server_busy`",
  },
  maxPayload: {
    env: "MAX_PAYLOAD",
    ...integer(1024, 16 * 1024 * 1024),
    default: LIMITS.payloadDefault,
    meaning: "largest frame in bytes (larger closes with 1009)",
  },
  floodCloseAfter: {
    env: "FLOOD_CLOSE_AFTER",
    ...integer(1, 1_000_000),
    default: 50,
    meaning: "rate-limited messages in a row before closing with 1008",
  },
  resumeTtlSeconds: {
    env: "RESUME_TTL_SECONDS",
    ...integer(600, 30 * 86400),
    default: 900,
    meaning: "how long a resume token outlives its connection (at least 600)",
  },
  maxConnectionsPerIp: {
    env: "MAX_CONNECTIONS_PER_IP",
    ...integer(1, 10_000_000),
    default: 1000,
    meaning: "connections from one client address before `503 server_busy`",
  },
  connectRatePerIp: {
    env: "CONNECT_RATE_PER_IP",
    ...decimal(0, 1_000_000),
    default: 20,
    meaning: "new connections a second from one client address; `0` is unlimited",
  },
  connectBurstPerIp: {
    env: "CONNECT_BURST_PER_IP",
    ...integer(1, 1_000_000),
    default: 100,
    meaning: "new connections one client address may open at once before the rate applies",
  },
  maxSessionsPerIp: {
    env: "MAX_SESSIONS_PER_IP",
    ...integer(1, 10_000_000),
    default: 5000,
    meaning: "resumable sessions one client address may hold; past it the oldest ended ones are forgotten",
  },
  bufferedBytesPerIp: {
    env: "BUFFERED_BYTES_PER_IP",
    ...integer(64 * 1024, 64 * 1024 * 1024 * 1024),
    default: 64 * 1024 * 1024,
    meaning:
      "unsent bytes all connections of one client address may hold together; past it the most backlogged one is closed with 1008",
  },
  historyBytesPerSecond: {
    env: "HISTORY_BYTES_PER_SECOND",
    ...integer(0, 1024 * 1024 * 1024),
    default: 1024 * 1024,
    meaning:
      "bytes of history a second one client address may read (`history`, welcomes with `since`); `0` is unlimited",
  },
  historyBytesBurst: {
    env: "HISTORY_BYTES_BURST",
    ...integer(64 * 1024, 1024 * 1024 * 1024),
    default: 8 * 1024 * 1024,
    meaning: "bytes of history one client address may read at once before the rate applies",
  },
  retentionMaxMessages: {
    env: "RETENTION_MAX_MESSAGES",
    ...integer(0, 1_000_000_000),
    default: 0,
    meaning:
      "messages kept per room, the newest; older ones are deleted by the sweep that runs every minute (over Redis, as chats are stored); `0` keeps all",
  },
  retentionMaxAgeDays: {
    env: "RETENTION_MAX_AGE_DAYS",
    ...decimal(0, 100_000),
    default: 0,
    meaning:
      "messages older than this many days are deleted by the sweep that runs every minute (over Redis, as the room's next chats are stored); `0` keeps them",
  },
  trustedProxies: {
    env: "TRUSTED_PROXIES",
    ...addresses,
    default: [],
    meaning: "comma-separated addresses or CIDRs whose `X-Forwarded-For` is believed",
    shown: "unset: none",
  },
  controlRateLimit: {
    env: "CONTROL_RATE_LIMIT",
    ...decimal(0, 1_000_000),
    default: 5,
    meaning: "`nick`, `join`, `history` and `who` requests per second per connection; `0` is unlimited",
  },
  controlRateBurst: {
    env: "CONTROL_RATE_BURST",
    ...integer(1, 1_000_000),
    default: 20,
    meaning: "the burst of `CONTROL_RATE_LIMIT`: such requests a connection may send at once",
  },
  frameRateLimit: {
    env: "FRAME_RATE_LIMIT",
    ...decimal(0, 1_000_000),
    default: 100,
    meaning: "frames of any kind per second per connection; `0` is unlimited",
  },
  frameRateBurst: {
    env: "FRAME_RATE_BURST",
    ...integer(1, 1_000_000),
    default: 200,
    meaning: "the burst of `FRAME_RATE_LIMIT`: frames a connection may send at once",
  },
  slowConsumerBytes: {
    env: "SLOW_CONSUMER_BYTES",
    ...integer(64 * 1024, 1024 * 1024 * 1024),
    default: 8 * 1024 * 1024,
    meaning:
      "unsent bytes after which a reader is closed with 1008 (it comes back with `since`); Bun's own drop limit is set 4x higher so nothing is ever dropped silently",
  },
  heartbeatIntervalSeconds: {
    env: "HEARTBEAT_INTERVAL_SECONDS",
    ...decimal(0.05, 3600),
    default: 10,
    meaning: "how often the server pings every socket",
  },
  heartbeatTimeoutSeconds: {
    env: "HEARTBEAT_TIMEOUT_SECONDS",
    ...decimal(0.1, 86400),
    default: 30,
    meaning: "a socket that sent nothing, not even a pong, for this long is dropped and leaves its room",
  },
  presenceBatchMs: {
    env: "PRESENCE_BATCH_MS",
    ...integer(0, 1000),
    default: 25,
    meaning:
      "in rooms of at least `PRESENCE_BATCH_MIN_MEMBERS` members, join/leave/rename events (and the joiners' welcomes) wait up to this long to share one message, so a reconnect storm costs one send per member per window; chats are never held; `0` turns it off",
  },
  presenceBatchMinMembers: {
    env: "PRESENCE_BATCH_MIN_MEMBERS",
    ...integer(1, 10_000_000),
    default: 50,
    meaning: "members a room needs before `PRESENCE_BATCH_MS` applies to it",
  },
  maxRoomsPerUser: {
    env: "MAX_ROOMS_PER_USER",
    ...integer(1, 10_000),
    default: 100,
    meaning: "rooms a v2 user may be in",
  },
  editWindowSeconds: {
    env: "EDIT_WINDOW_SECONDS",
    ...integer(0, 31_536_000),
    default: 0,
    meaning: "how long after posting an edit is allowed; `0` is no limit",
  },
  idleTimeoutSeconds: {
    env: "IDLE_TIMEOUT_SECONDS",
    ...integer(0, 960),
    default: 60,
    meaning: "Bun's idle timeout with pings; `0` turns it off",
  },
  logLevel: {
    env: "LOG_LEVEL",
    ...oneOf(["debug", "info", "warn", "error"]),
    default: "info",
    meaning: "`debug`, `info`, `warn` or `error`; logs are JSON lines without message bodies or tokens",
  },
};

/** Each setting with its `Config` key, in README order. */
export const SETTING_LIST = Object.entries(SETTINGS) as Array<[keyof Config, Setting<unknown>]>;

/** Rules over several settings, checked once every value has parsed. */
export const CROSS_RULES: ReadonlyArray<{
  env: string;
  broken: (config: Config) => boolean;
  detail: string;
}> = [
  {
    env: "REDIS_CLUSTER",
    broken: (config) => config.redisUrl !== undefined && config.redisCluster.length > 0,
    detail: "set REDIS_URL or REDIS_CLUSTER, not both",
  },
];

/** The README's configuration table; test/config.test.ts keeps the two equal. */
export function settingsTableMarkdown(): string {
  const rows = SETTING_LIST.map(
    ([, s]) => `| \`${s.env}\` | ${s.meaning} | ${s.shown ?? `\`${s.format(s.default)}\``} |`,
  );
  return ["| variable | meaning | default |", "|---|---|---|", ...rows].join("\n");
}
