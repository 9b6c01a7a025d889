/**
 * Scenario 6: scale-out. Our server as several processes sharing one private Redis (REDIS_URL),
 * clients spread evenly over the processes in the same room, against one process on the same Redis
 * and one process on SQLite (the default): broadcast throughput (closed loop) and fan-out latency
 * at a fixed rate, with the CPU of every server process summed. Every client checks that it saw
 * each chat of its room once and in seq order, and the totals that no delivery is missing.
 */
import type { Plan } from "../config";
import type { Pool } from "../generator/pool";
import { redisServerPath, startRedis } from "../redis";
import { orderFor, type Progress, quietest } from "./common";
import { type Deployment, spread, withDeployment } from "./deployment";
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

/** `redis-n`: `processes` processes on one Redis; `redis-1`: one process on it; `sqlite-1`: the default. */
export type ClusterVariant = "redis-n" | "redis-1" | "sqlite-1";
export const VARIANTS: readonly ClusterVariant[] = ["redis-n", "redis-1", "sqlite-1"];

export function variantLabel(variant: ClusterVariant, processes: number): string {
  if (variant === "redis-n") return `${processes} processes + Redis`;
  return variant === "redis-1" ? "1 process + Redis" : "1 process + SQLite";
}

export interface ClusterThroughputRun extends ThroughputFigures, Checked, CpuSplit {
  /** Server CPU per delivery with Redis's CPU added, in microseconds. */
  totalUsPerDelivery: number;
}

export interface ClusterLatencyRun extends LatencyFigures, Checked, CpuSplit {}

export interface ClusterVariantResult {
  variant: ClusterVariant;
  label: string;
  processes: number;
  throughput: { runs: ClusterThroughputRun[]; median: ClusterThroughputRun };
  latency: { runs: ClusterLatencyRun[]; median: ClusterLatencyRun };
}

export interface ClusterResult {
  processes: number;
  /** The throughput configuration's name, e.g. "32 in 1 room". */
  config: string;
  /** Messages each client keeps in flight there. */
  window: number;
  members: number;
  rate: number;
  redisVersion: string | undefined;
  /** Why nothing was measured (no redis-server here). */
  skipped?: string;
  variants: ClusterVariantResult[];
}

async function measureThroughput(
  plan: Plan,
  pool: Pool,
  d: Deployment,
  tag: string,
): Promise<ClusterThroughputRun> {
  const { throughput: cfg, warmupMs, measureMs } = plan.cluster;
  if (cfg.clients % cfg.rooms !== 0) throw new Error("cluster: clients must fill the rooms evenly");
  const specs = spread(d, cfg.clients, (i) => ({ room: `${tag}-${i % cfg.rooms}`, nick: `u${i}` }));
  const w = await measureClosedLoop(
    pool,
    d,
    specs,
    { window: cfg.window, textLength: plan.textLength },
    { connectMs: 20_000, warmupMs, measureMs, roomSize: cfg.clients / cfg.rooms },
  );
  return {
    ...throughputFigures(w),
    totalUsPerDelivery:
      w.deliveries > 0 ? ((w.serverCpuSeconds + w.redisCpuSeconds) * 1e6) / w.deliveries : Number.NaN,
    ...w.cpu,
    ...w.checked,
  };
}

async function measureLatency(
  plan: Plan,
  pool: Pool,
  d: Deployment,
  room: string,
): Promise<ClusterLatencyRun> {
  const { members, rate, senders, warmupMs, measureMs } = plan.cluster.latency;
  // Sender g is member g, so the senders alternate between the processes too.
  const specs = spread(d, members, (i) => ({ room, nick: `m${i}` }));
  const w = await measureOpenLoop(
    pool,
    d,
    specs,
    { senders, rate, textLength: plan.textLength },
    { connectMs: 30_000, warmupMs, measureMs, roomSize: members },
  );
  return { ...latencyFigures(w, rate, members), ...w.cpu, ...w.checked };
}

export async function runCluster(plan: Plan, pool: Pool, progress: Progress): Promise<ClusterResult> {
  const c = plan.cluster;
  const result: ClusterResult = {
    processes: c.processes,
    config: c.throughput.name,
    window: c.throughput.window,
    members: c.latency.members,
    rate: c.latency.rate,
    redisVersion: undefined,
    variants: [],
  };
  const bin = redisServerPath();
  if (!bin) {
    progress("  no redis-server here (set REDIS_SERVER to its path): skipped");
    return { ...result, skipped: "no redis-server found" };
  }
  const redis = await startRedis(bin);
  result.redisVersion = redis.version;
  progress(
    `  private redis-server ${redis.version} on 127.0.0.1:${redis.port} (appendonly, fsync every second)`,
  );
  const byVariant = new Map<ClusterVariant, Array<{ tp: ClusterThroughputRun; lat: ClusterLatencyRun }>>(
    VARIANTS.map((v) => [v, []]),
  );
  try {
    for (let rep = 0; rep < c.reps; rep++) {
      for (const variant of orderFor(VARIANTS, rep)) {
        const label = variantLabel(variant, c.processes);
        // Each run starts on an empty Redis, as each single server starts on a fresh database.
        await redis.flush();
        const count = variant === "redis-n" ? c.processes : 1;
        const env: Record<string, string> = variant === "sqlite-1" ? {} : { REDIS_URL: redis.url };
        const metered = { pids: [redis.pid], primary: [true] };
        await withDeployment(count, env, metered, `cluster ${label}, repetition ${rep + 1}`, async (d) => {
          let a = 0;
          const tp = await quietest(plan.attempts, progress, () =>
            measureThroughput(plan, pool, d, `cl${rep}t${a++}`),
          );
          let b = 0;
          const lat = await quietest(plan.attempts, progress, () =>
            measureLatency(plan, pool, d, `cl${rep}l${b++}`),
          );
          byVariant.get(variant)?.push({ tp, lat });
        });
        progress(`  ${label} rep ${rep + 1}/${c.reps} done`);
      }
    }
  } finally {
    await redis.stop();
  }
  result.variants = VARIANTS.map((variant) => {
    const runs = byVariant.get(variant) ?? [];
    const tpRuns = runs.map((r) => r.tp);
    const latRuns = runs.map((r) => r.lat);
    return {
      variant,
      label: variantLabel(variant, c.processes),
      processes: variant === "redis-n" ? c.processes : 1,
      throughput: { runs: tpRuns, median: medianOf(tpRuns) },
      latency: { runs: latRuns, median: medianOf(latRuns) },
    };
  });
  return result;
}
