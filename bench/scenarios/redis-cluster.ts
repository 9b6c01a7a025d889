/**
 * Scenario 7: Redis Cluster. Our server as `processes` processes on a private Redis Cluster
 * (`primaries` primaries with `replicasPerPrimary` replicas each, REDIS_CLUSTER: rooms spread over 16
 * hash-tag partitions, so over every primary), against one process on one private redis-server
 * (REDIS_URL, the plain layout); the same cluster with REDIS_MIN_REPLICAS=1 (each chat's ack waits
 * until a replica holds it: WAIT); and, to tell the cluster's cost from that of more processes, one
 * process on the cluster. Every node runs with the append-only file, fsync every second, as the
 * single Redis of scenario 6 does.
 *
 * For each shape (many rooms, one room): broadcast throughput (closed loop) and fan-out latency at a
 * fixed rate, client i on process i mod processes. The CPU of every chat process and of every Redis
 * node is read from /proc, so each run also gives server CPU per delivery and Redis CPU per message
 * stored: the figures docs/SCALING.md builds on. Every client checks seq order and the totals that
 * nothing is missing, as in scenario 6.
 */
import { existsSync } from "node:fs";
import { REDIS_CLI_BIN, RedisCluster } from "../../test/redis/support/redis-cluster";
import { REDIS_BIN } from "../../test/redis/support/redis-server";
import type { Plan, RedisClusterConfig, RedisClusterShape } from "../config";
import type { Pool } from "../generator/pool";
import { type RunningRedis, startRedis } from "../redis";
import { orderFor, type Progress, quietest } from "./common";
import { type Deployment, type RedisPids, spread, withDeployment } from "./deployment";
import {
  type Checked,
  type CpuSplit,
  type LatencyFigures,
  latencyFigures,
  measureClosedLoop,
  measureOpenLoop,
  medianOf,
  type ThroughputFigures,
  throughputFigures,
} from "./measure";

export type RedisClusterVariant = RedisClusterConfig["variants"][number];

export function variantLabel(
  variant: RedisClusterVariant,
  c: Pick<RedisClusterConfig, "processes" | "primaries">,
): string {
  switch (variant) {
    case "single":
      return "1 process + one Redis";
    case "cluster":
      return `${c.processes} processes + ${c.primaries}-primary cluster`;
    case "cluster-wait":
      return `${c.processes} processes + ${c.primaries}-primary cluster, MIN_REPLICAS=1`;
    case "cluster-1":
      return `1 process + ${c.primaries}-primary cluster`;
  }
}

export interface RedisClusterThroughputRun extends ThroughputFigures, Checked, CpuSplit {
  /** Every Redis node's CPU (replicas included) per chat stored, in microseconds. */
  redisUsPerMessage: number;
  /** The primaries' CPU per chat stored: what bounds the writes one primary takes. */
  redisPrimaryUsPerMessage: number;
}

export interface RedisClusterLatencyRun extends LatencyFigures, Checked, CpuSplit {
  /** Chat processes' CPU per chat at this rate, summed over the processes (few chats share a batch). */
  serverUsPerMessage: number;
  /** Every Redis node's CPU per chat at this rate. */
  redisUsPerMessage: number;
}

export interface RedisClusterShapeResult {
  shape: string;
  clients: number;
  rooms: number;
  window: number;
  latency: RedisClusterShape["latency"];
  throughput: { runs: RedisClusterThroughputRun[]; median: RedisClusterThroughputRun };
  fanout: { runs: RedisClusterLatencyRun[]; median: RedisClusterLatencyRun };
}

export interface RedisClusterVariantResult {
  variant: RedisClusterVariant;
  label: string;
  processes: number;
  /** Redis nodes: 1, or every primary and replica. */
  redisNodes: number;
  shapes: RedisClusterShapeResult[];
}

export interface RedisClusterResult {
  processes: number;
  primaries: number;
  replicasPerPrimary: number;
  redisVersion: string | undefined;
  /** Seconds from starting the cluster's servers to a settled cluster. */
  clusterStartSeconds: number;
  /** Why nothing was measured (no redis-server or redis-cli here). */
  skipped?: string;
  variants: RedisClusterVariantResult[];
}

/** Where the Redis side runs: one redis-server or the cluster, with the pids to meter. */
interface Backend extends RedisPids {
  env: Record<string, string>;
  flush(): Promise<void>;
}

function processesOf(variant: RedisClusterVariant, c: RedisClusterConfig): number {
  return variant === "cluster" || variant === "cluster-wait" ? c.processes : 1;
}

/** Client `i` goes to chat process `i % processes`, in room `tag-(i % rooms)`. */
function specsFor(d: Deployment, count: number, rooms: number, tag: string, nick: string) {
  return spread(d, count, (i) => ({ room: `${tag}-${i % rooms}`, nick: `${nick}${i}` }));
}

async function measureThroughput(
  c: RedisClusterConfig,
  plan: Plan,
  pool: Pool,
  d: Deployment,
  shape: RedisClusterShape,
  tag: string,
): Promise<RedisClusterThroughputRun> {
  if (shape.clients % shape.rooms !== 0)
    throw new Error(`redis-cluster ${shape.name}: clients must fill the rooms evenly`);
  const w = await measureClosedLoop(
    pool,
    d,
    specsFor(d, shape.clients, shape.rooms, tag, "u"),
    { window: shape.window, textLength: plan.textLength },
    {
      connectMs: 30_000,
      warmupMs: c.warmupMs,
      measureMs: c.measureMs,
      roomSize: shape.clients / shape.rooms,
    },
  );
  return {
    ...throughputFigures(w),
    redisUsPerMessage: w.sent > 0 ? (w.redisCpuSeconds * 1e6) / w.sent : Number.NaN,
    redisPrimaryUsPerMessage: w.sent > 0 ? (w.redisPrimaryCpuSeconds * 1e6) / w.sent : Number.NaN,
    ...w.cpu,
    ...w.checked,
  };
}

async function measureLatency(
  c: RedisClusterConfig,
  plan: Plan,
  pool: Pool,
  d: Deployment,
  shape: RedisClusterShape,
  tag: string,
): Promise<RedisClusterLatencyRun> {
  const { members, rooms, rate, senders } = shape.latency;
  if (members % rooms !== 0)
    throw new Error(`redis-cluster ${shape.name}: members must fill the rooms evenly`);
  const roomSize = members / rooms;
  // Sender g is member g: in room g mod rooms, on process g mod processes.
  const w = await measureOpenLoop(
    pool,
    d,
    specsFor(d, members, rooms, tag, "m"),
    { senders, rate, textLength: plan.textLength },
    { connectMs: 30_000, warmupMs: c.latencyWarmupMs, measureMs: c.latencyMeasureMs, roomSize },
  );
  return {
    ...latencyFigures(w, rate, roomSize),
    serverUsPerMessage: w.sent > 0 ? (w.serverCpuSeconds * 1e6) / w.sent : Number.NaN,
    redisUsPerMessage: w.sent > 0 ? (w.redisCpuSeconds * 1e6) / w.sent : Number.NaN,
    ...w.cpu,
    ...w.checked,
  };
}

/** The pid of the redis-server answering on `port` (INFO server's process_id). */
async function pidOf(cluster: RedisCluster, port: number): Promise<number> {
  const info = String(await cluster.command(port, "INFO", ["server"]));
  const pid = Number(/process_id:(\d+)/.exec(info)?.[1]);
  if (!Number.isInteger(pid)) throw new Error(`no process_id from the Redis node on port ${port}`);
  return pid;
}

/** Starts the cluster and gives every node the single Redis's persistence (AOF, fsync every second). */
async function startCluster(
  c: RedisClusterConfig,
): Promise<{ cluster: RedisCluster; backend: Backend; version: string }> {
  const cluster = await RedisCluster.start({
    primaries: c.primaries,
    replicasPerPrimary: c.replicasPerPrimary,
  });
  try {
    const ports = cluster.livePorts;
    for (const port of ports) {
      await cluster.command(port, "CONFIG", ["SET", "appendfsync", "everysec"]);
      await cluster.command(port, "CONFIG", ["SET", "appendonly", "yes"]);
    }
    const pids = await Promise.all(ports.map((p) => pidOf(cluster, p)));
    const primaryPorts = new Set((await cluster.primaries()).map((n) => n.port));
    const info = String(await cluster.command(ports[0] as number, "INFO", ["server"]));
    const backend: Backend = {
      env: { REDIS_CLUSTER: cluster.seedsEnv },
      pids,
      primary: ports.map((p) => primaryPorts.has(p)),
      flush: async () => {
        for (const p of await cluster.primaries()) await cluster.command(p.port, "FLUSHALL");
      },
    };
    return { cluster, backend, version: /redis_version:(\S+)/.exec(info)?.[1] ?? "?" };
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}

function singleBackend(redis: RunningRedis): Backend {
  return { env: { REDIS_URL: redis.url }, pids: [redis.pid], primary: [true], flush: () => redis.flush() };
}

type Runs = Map<string, { tp: RedisClusterThroughputRun[]; lat: RedisClusterLatencyRun[] }>;

export async function runRedisCluster(
  plan: Plan,
  pool: Pool,
  progress: Progress,
): Promise<RedisClusterResult> {
  const c = plan.redisCluster;
  const result: RedisClusterResult = {
    processes: c.processes,
    primaries: c.primaries,
    replicasPerPrimary: c.replicasPerPrimary,
    redisVersion: undefined,
    clusterStartSeconds: Number.NaN,
    variants: [],
  };
  const missing = [REDIS_BIN, REDIS_CLI_BIN].filter((bin) => !existsSync(bin));
  if (missing.length > 0) {
    progress(`  ${missing.join(" and ")} missing (set REDIS_SERVER_BIN / REDIS_CLI_BIN): skipped`);
    return { ...result, skipped: `${missing.join(" and ")} not found` };
  }
  if (c.variants.includes("cluster-wait") && c.replicasPerPrimary < 1)
    throw new Error("redis-cluster: MIN_REPLICAS=1 needs replicasPerPrimary >= 1");

  const t0 = performance.now();
  const started = await startCluster(c);
  result.clusterStartSeconds = (performance.now() - t0) / 1000;
  result.redisVersion = started.version;
  const nodes = c.primaries * (1 + c.replicasPerPrimary);
  progress(
    `  private Redis Cluster ${started.version}: ${c.primaries} primaries + ${c.primaries * c.replicasPerPrimary} replicas, ready in ${result.clusterStartSeconds.toFixed(1)} s`,
  );
  const runs: Runs = new Map();
  const key = (v: RedisClusterVariant, shape: string) => `${v}\u0000${shape}`;
  let redis: RunningRedis | undefined;
  try {
    if (c.variants.includes("single")) redis = await startRedis(REDIS_BIN);
    for (let rep = 0; rep < c.reps; rep++) {
      for (const variant of orderFor(c.variants, rep)) {
        const label = variantLabel(variant, c);
        const backend = variant === "single" ? singleBackend(redis as RunningRedis) : started.backend;
        // Each deployment starts on an empty Redis, as each single server starts on a fresh database.
        await backend.flush();
        const env = { ...backend.env, ...(variant === "cluster-wait" ? { REDIS_MIN_REPLICAS: "1" } : {}) };
        const what = `redis-cluster ${label}, repetition ${rep + 1}`;
        await withDeployment(processesOf(variant, c), env, backend, what, async (d) => {
          for (const [s, shape] of c.shapes.entries()) {
            const slot = runs.get(key(variant, shape.name)) ?? { tp: [], lat: [] };
            runs.set(key(variant, shape.name), slot);
            let a = 0;
            const tp = await quietest(plan.attempts, progress, () =>
              measureThroughput(c, plan, pool, d, shape, `rc${rep}s${s}t${a++}`),
            );
            let b = 0;
            const lat = await quietest(plan.attempts, progress, () =>
              measureLatency(c, plan, pool, d, shape, `rc${rep}s${s}l${b++}`),
            );
            slot.tp.push(tp);
            slot.lat.push(lat);
            // A run with errors is kept (the report lists it as a problem); the processes' logs say why.
            if ([tp, lat].some((m) => m.errors > 0 || m.missing !== 0 || m.unexpectedCloses > 0)) {
              progress(`  ${label}, ${shape.name}: errors or missing deliveries; the processes' last lines:`);
              for (const [i, t] of d.targets.entries())
                progress(`  --- process ${i + 1} ---\n${t.tail().split("\n").slice(-8).join("\n")}`);
            }
          }
        });
        progress(`  ${label} rep ${rep + 1}/${c.reps} done`);
      }
    }
  } finally {
    await redis?.stop();
    await started.cluster.stop();
  }
  result.variants = c.variants.map((variant) => ({
    variant,
    label: variantLabel(variant, c),
    processes: processesOf(variant, c),
    redisNodes: variant === "single" ? 1 : nodes,
    shapes: c.shapes.map((shape) => {
      const r = runs.get(key(variant, shape.name)) ?? { tp: [], lat: [] };
      return {
        shape: shape.name,
        clients: shape.clients,
        rooms: shape.rooms,
        window: shape.window,
        latency: shape.latency,
        throughput: { runs: r.tp, median: medianOf(r.tp) },
        fanout: { runs: r.lat, median: medianOf(r.lat) },
      };
    }),
  }));
  return result;
}
