/**
 * Scenario 6: scale-out. Our server as several processes sharing one private Redis (REDIS_URL),
 * clients spread evenly over the processes in the same room, against one process on the same Redis
 * and one process on SQLite (the default): broadcast throughput (closed loop) and fan-out latency
 * at a fixed rate, with the CPU of every server process summed. Every client checks that it saw
 * each chat of its room once and in seq order, and the totals that no delivery is missing.
 */
import type { Plan } from "../config";
import type { Snapshot } from "../generator/commands";
import type { ClientSpec } from "../generator/dialects";
import type { Pool } from "../generator/pool";
import { CpuMeter, type CpuReading, NPROC } from "../processes";
import { type RunningRedis, redisServerPath, startRedis } from "../redis";
import { type RunningTarget, SERVERS, startTarget } from "../servers";
import { Histogram, median } from "../stats";
import {
  commonLimit,
  connectAll,
  orderFor,
  type Progress,
  place,
  quietest,
  SATURATED,
  sleep,
  startClosedLoop,
  startOpenLoop,
  sum,
} from "./common";

/** `redis-n`: `processes` processes on one Redis; `redis-1`: one process on it; `sqlite-1`: the default. */
export type ClusterVariant = "redis-n" | "redis-1" | "sqlite-1";
export const VARIANTS: readonly ClusterVariant[] = ["redis-n", "redis-1", "sqlite-1"];

export function variantLabel(variant: ClusterVariant, processes: number): string {
  if (variant === "redis-n") return `${processes} processes + Redis`;
  return variant === "redis-1" ? "1 process + Redis" : "1 process + SQLite";
}

/** What every client and the totals saw: all zero when every delivery arrived once, in order. */
export interface Checked {
  /** Deliveries expected (each chat to every member of its room) minus those received. */
  missing: number;
  /** Seqs a client skipped, summed over clients. */
  seqGaps: number;
  /** Chats at or below a seq the client had already seen. */
  seqDupes: number;
  errors: number;
  unexpectedCloses: number;
  firstError: string | undefined;
}

interface CpuSplit {
  /** Summed over the server processes. */
  serverCores: number;
  /** One figure per server process. */
  serverCoresEach: number[];
  redisCores: number;
  generatorCores: number;
  otherCores: number;
  /** Which process sat at >= 0.85 of a core ("server", "redis", "generator"), "cores" when the machine was full. */
  limit: string;
}

export interface ClusterThroughputRun extends Checked, CpuSplit {
  deliveriesPerSec: number;
  messagesPerSec: number;
  fanout: number;
  /** Server CPU per delivery, summed over the server processes, in microseconds. */
  serverUsPerDelivery: number;
  /** The same with Redis's CPU added. */
  totalUsPerDelivery: number;
}

export interface ClusterLatencyRun extends Checked, CpuSplit {
  p50: number;
  p99: number;
  p999: number;
  max: number;
  samples: number;
  delivered: number;
  sendLagMaxMs: number;
}

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

interface Deployment {
  variant: ClusterVariant;
  targets: RunningTarget[];
  redisPid: number;
}

async function deploy(variant: ClusterVariant, processes: number, redis: RunningRedis): Promise<Deployment> {
  const count = variant === "redis-n" ? processes : 1;
  const env: Record<string, string> = variant === "sqlite-1" ? {} : { REDIS_URL: redis.url };
  const started = await Promise.allSettled(
    Array.from({ length: count }, () => startTarget(SERVERS.ours, { env })),
  );
  const targets = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failed) {
    await Promise.all(targets.map((t) => t.stop()));
    throw failed.reason;
  }
  return { variant, targets, redisPid: redis.pid };
}

/** Client `i` goes to server process `i % processes`. */
function spread(d: Deployment, count: number, spec: (i: number) => ClientSpec): ClientSpec[] {
  return Array.from({ length: count }, (_, i) => ({
    ...spec(i),
    port: (d.targets[i % d.targets.length] as RunningTarget).port,
  }));
}

async function connect(pool: Pool, d: Deployment, specs: ClientSpec[], timeoutMs: number): Promise<void> {
  const first = d.targets[0] as RunningTarget;
  const target = { hostname: first.hostname, port: first.port, dialect: "chat-json" as const };
  await connectAll(pool, target, place(specs, pool.workers.length), {
    timeoutMs,
    what: "clients",
    checkSeq: true,
  });
}

function meterFor(pool: Pool, d: Deployment): CpuMeter {
  return new CpuMeter([...d.targets.map((t) => t.pid), d.redisPid, ...pool.pids]);
}

function split(
  cpu: CpuReading,
  servers: number,
): CpuSplit & { serverCpuSeconds: number; redisCpuSeconds: number } {
  const serverCoresEach = cpu.cores.slice(0, servers);
  const redisCores = cpu.cores[servers] as number;
  const generators = cpu.cores.slice(servers + 1);
  const parts: string[] = [];
  if (Math.max(0, ...serverCoresEach) >= SATURATED) parts.push("server");
  if (redisCores >= SATURATED) parts.push("redis");
  if (Math.max(0, ...generators) >= SATURATED) parts.push("generator");
  const busy = sum(serverCoresEach, (c) => c) + redisCores + sum(generators, (c) => c) + cpu.otherCores;
  if (busy >= 0.9 * NPROC) parts.push("cores");
  return {
    serverCores: sum(serverCoresEach, (c) => c),
    serverCoresEach,
    redisCores,
    generatorCores: Math.max(...generators),
    otherCores: cpu.otherCores,
    limit: parts.length > 0 ? parts.join("+") : "neither",
    serverCpuSeconds: sum(cpu.cpuSeconds.slice(0, servers), (c) => c),
    redisCpuSeconds: cpu.cpuSeconds[servers] as number,
  };
}

/**
 * Stops sending, waits until nothing is in flight, and compares the totals since connecting: each
 * chat must have reached all `roomSize` members of its room.
 */
export async function settle(pool: Pool, roomSize: number): Promise<Checked> {
  await pool.all({ cmd: "stopSending", timeoutMs: 5000 }, 8000);
  const end = await pool.all<Snapshot>({ cmd: "snapshot", reset: false }, 5000);
  await pool.all({ cmd: "close", timeoutMs: 3000 }, 5000);
  return {
    missing: sum(end, (s) => s.sent) * roomSize - sum(end, (s) => s.deliveries),
    seqGaps: sum(end, (s) => s.seqGaps),
    seqDupes: sum(end, (s) => s.seqDupes),
    errors: sum(end, (s) => s.errors),
    unexpectedCloses: sum(end, (s) => s.unexpectedCloses),
    firstError: end.find((s) => s.firstError)?.firstError,
  };
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
  await connect(pool, d, specs, 20_000);
  const perWorker = place(specs, pool.workers.length);
  await startClosedLoop(pool, perWorker, cfg.window, plan.textLength);
  await sleep(warmupMs);
  const meter = meterFor(pool, d);
  const s0 = await pool.all<Snapshot>({ cmd: "snapshot", reset: true }, 5000);
  meter.start();
  await sleep(measureMs);
  const s1 = await pool.all<Snapshot>({ cmd: "snapshot", reset: true }, 5000);
  const cpu = split(meter.stop(), d.targets.length);
  const checked = await settle(pool, cfg.clients / cfg.rooms);

  const seconds = median(s1.map((s, i) => (s.at - (s0[i] as Snapshot).at) / 1000));
  const deliveries = sum(s1, (s) => s.deliveries) - sum(s0, (s) => s.deliveries);
  const sent = sum(s1, (s) => s.sent) - sum(s0, (s) => s.sent);
  const { serverCpuSeconds, redisCpuSeconds, ...cores } = cpu;
  return {
    deliveriesPerSec: deliveries / seconds,
    messagesPerSec: sent / seconds,
    fanout: sent > 0 ? deliveries / sent : 0,
    serverUsPerDelivery: deliveries > 0 ? (serverCpuSeconds * 1e6) / deliveries : Number.NaN,
    totalUsPerDelivery:
      deliveries > 0 ? ((serverCpuSeconds + redisCpuSeconds) * 1e6) / deliveries : Number.NaN,
    ...cores,
    ...checked,
  };
}

async function measureLatency(
  plan: Plan,
  pool: Pool,
  d: Deployment,
  room: string,
): Promise<ClusterLatencyRun> {
  const { members, rate, senders, warmupMs, measureMs } = plan.cluster.latency;
  await connect(
    pool,
    d,
    spread(d, members, (i) => ({ room, nick: `m${i}` })),
    30_000,
  );
  // Let the join storm's presence traffic pass before timing anything.
  await sleep(300);
  // Sender g is member g, so the senders alternate between the processes too.
  await startOpenLoop(pool, senders, rate, plan.textLength);
  await sleep(100 + warmupMs);
  const meter = meterFor(pool, d);
  const s0 = await pool.all<Snapshot>({ cmd: "snapshot", reset: true }, 5000);
  meter.start();
  await sleep(measureMs);
  const s1 = await pool.all<Snapshot>({ cmd: "snapshot", reset: true }, 5000);
  const cpu = split(meter.stop(), d.targets.length);
  const checked = await settle(pool, members);

  const hist = new Histogram();
  for (const s of s1) hist.add(s.latency, s.latencyMax * 1000);
  const seconds = median(s1.map((s, i) => (s.at - (s0[i] as Snapshot).at) / 1000));
  const deliveries = sum(s1, (s) => s.deliveries) - sum(s0, (s) => s.deliveries);
  const { serverCpuSeconds: _s, redisCpuSeconds: _r, ...cores } = cpu;
  return {
    p50: hist.quantile(0.5),
    p99: hist.quantile(0.99),
    p999: hist.quantile(0.999),
    max: hist.max,
    samples: hist.count,
    delivered: deliveries / (rate * members * seconds),
    sendLagMaxMs: Math.max(...s1.map((s) => s.sendLagMaxMs)),
    ...cores,
    ...checked,
  };
}

/** Check counters take the worst run; figures the median; per-process cores the median of each. */
const WORST = new Set(["missing", "seqGaps", "seqDupes", "errors", "unexpectedCloses"]);

export function medianOf<T extends CpuSplit & Checked>(runs: readonly T[]): T {
  const rows = runs as unknown as Array<Record<string, unknown>>;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(rows[0] ?? {})) {
    const all = rows.map((r) => r[key]);
    if (typeof value === "number") {
      out[key] = WORST.has(key) ? Math.max(...(all as number[])) : median(all as number[]);
    } else if (Array.isArray(value)) {
      out[key] = value.map((_, i) => median(all.map((a) => (a as number[])[i] as number)));
    } else out[key] = value;
  }
  out.limit = commonLimit(runs.map((r) => r.limit));
  out.firstError = runs.find((r) => r.firstError)?.firstError;
  return out as unknown as T;
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
        const d = await deploy(variant, c.processes, redis);
        try {
          let a = 0;
          const tp = await quietest(plan.attempts, progress, () =>
            measureThroughput(plan, pool, d, `cl${rep}t${a++}`),
          );
          let b = 0;
          const lat = await quietest(plan.attempts, progress, () =>
            measureLatency(plan, pool, d, `cl${rep}l${b++}`),
          );
          byVariant.get(variant)?.push({ tp, lat });
        } catch (err) {
          const tails = d.targets.map((t, i) => `--- server process ${i + 1} ---\n${t.tail()}`).join("\n");
          throw new Error(
            `cluster ${label}, repetition ${rep + 1}: ${err instanceof Error ? err.message : String(err)}\n${tails}`,
          );
        } finally {
          await Promise.all(d.targets.map((t) => t.stop()));
        }
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
