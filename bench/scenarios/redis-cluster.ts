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
import type { Snapshot } from "../generator/commands";
import type { ClientSpec } from "../generator/dialects";
import type { Pool } from "../generator/pool";
import { CpuMeter, type CpuReading, NPROC } from "../processes";
import { type RunningRedis, startRedis } from "../redis";
import { type RunningTarget, SERVERS, startTarget } from "../servers";
import { Histogram, median } from "../stats";
import { type Checked, medianOf, settle } from "./cluster";
import {
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

interface CpuSplit {
  /** Summed over the chat processes. */
  serverCores: number;
  /** One figure per chat process. */
  serverCoresEach: number[];
  /** Summed over every Redis node (primaries and replicas). */
  redisCores: number;
  /** Summed over the primaries only (the single Redis is one). */
  redisPrimaryCores: number;
  /** The busiest Redis node: one Redis runs its commands on one thread. */
  redisCoresMax: number;
  generatorCores: number;
  otherCores: number;
  /** Which process sat at >= 0.85 of a core ("server", "redis", "generator"), "cores" when the machine was full. */
  limit: string;
}

export interface RedisClusterThroughputRun extends Checked, CpuSplit {
  deliveriesPerSec: number;
  messagesPerSec: number;
  fanout: number;
  /** Chat processes' CPU per delivery, summed over the processes, in microseconds. */
  serverUsPerDelivery: number;
  /** Every Redis node's CPU (replicas included) per chat stored, in microseconds. */
  redisUsPerMessage: number;
  /** The primaries' CPU per chat stored: what bounds the writes one primary takes. */
  redisPrimaryUsPerMessage: number;
}

export interface RedisClusterLatencyRun extends Checked, CpuSplit {
  p50: number;
  p99: number;
  p999: number;
  max: number;
  samples: number;
  delivered: number;
  sendLagMaxMs: number;
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
interface Backend {
  env: Record<string, string>;
  pids: number[];
  /** Per pid: true for a primary. */
  primary: boolean[];
  flush(): Promise<void>;
}

interface Deployment {
  targets: RunningTarget[];
  redisPids: number[];
  redisPrimary: boolean[];
}

function processesOf(variant: RedisClusterVariant, c: RedisClusterConfig): number {
  return variant === "cluster" || variant === "cluster-wait" ? c.processes : 1;
}

async function deploy(count: number, env: Record<string, string>, backend: Backend): Promise<Deployment> {
  const started = await Promise.allSettled(
    Array.from({ length: count }, () => startTarget(SERVERS.ours, { env })),
  );
  const targets = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failed) {
    await Promise.all(targets.map((t) => t.stop()));
    throw failed.reason;
  }
  return { targets, redisPids: backend.pids, redisPrimary: backend.primary };
}

/** Client `i` goes to server process `i % processes`, in room `tag-(i % rooms)`. */
function specsFor(d: Deployment, count: number, rooms: number, tag: string, nick: string): ClientSpec[] {
  return Array.from({ length: count }, (_, i) => ({
    room: `${tag}-${i % rooms}`,
    nick: `${nick}${i}`,
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
  return new CpuMeter([...d.targets.map((t) => t.pid), ...d.redisPids, ...pool.pids]);
}

function split(
  cpu: CpuReading,
  d: Deployment,
): CpuSplit & { serverCpuSeconds: number; redisCpuSeconds: number; redisPrimaryCpuSeconds: number } {
  const servers = d.targets.length;
  const nodes = d.redisPids.length;
  const serverCoresEach = cpu.cores.slice(0, servers);
  const redisEach = cpu.cores.slice(servers, servers + nodes);
  const generators = cpu.cores.slice(servers + nodes);
  const parts: string[] = [];
  if (Math.max(0, ...serverCoresEach) >= SATURATED) parts.push("server");
  if (Math.max(0, ...redisEach) >= SATURATED) parts.push("redis");
  if (Math.max(0, ...generators) >= SATURATED) parts.push("generator");
  const all = (xs: number[]) => sum(xs, (c) => (Number.isFinite(c) ? c : 0));
  const primaries = (xs: number[]) => xs.filter((_, i) => d.redisPrimary[i]);
  const redisCpu = cpu.cpuSeconds.slice(servers, servers + nodes);
  const busy = all(serverCoresEach) + all(redisEach) + all(generators) + cpu.otherCores;
  if (busy >= 0.9 * NPROC) parts.push("cores");
  return {
    serverCores: all(serverCoresEach),
    serverCoresEach,
    redisCores: all(redisEach),
    redisPrimaryCores: all(primaries(redisEach)),
    redisCoresMax: Math.max(0, ...redisEach),
    generatorCores: Math.max(0, ...generators),
    otherCores: cpu.otherCores,
    limit: parts.length > 0 ? parts.join("+") : "neither",
    serverCpuSeconds: all(cpu.cpuSeconds.slice(0, servers)),
    redisCpuSeconds: all(redisCpu),
    redisPrimaryCpuSeconds: all(primaries(redisCpu)),
  };
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
  const specs = specsFor(d, shape.clients, shape.rooms, tag, "u");
  await connect(pool, d, specs, 30_000);
  await startClosedLoop(pool, place(specs, pool.workers.length), shape.window, plan.textLength);
  await sleep(c.warmupMs);
  const meter = meterFor(pool, d);
  const s0 = await pool.all<Snapshot>({ cmd: "snapshot", reset: true }, 5000);
  meter.start();
  await sleep(c.measureMs);
  const s1 = await pool.all<Snapshot>({ cmd: "snapshot", reset: true }, 5000);
  const cpu = split(meter.stop(), d);
  const checked = await settle(pool, shape.clients / shape.rooms);

  const seconds = median(s1.map((s, i) => (s.at - (s0[i] as Snapshot).at) / 1000));
  const deliveries = sum(s1, (s) => s.deliveries) - sum(s0, (s) => s.deliveries);
  const sent = sum(s1, (s) => s.sent) - sum(s0, (s) => s.sent);
  const { serverCpuSeconds, redisCpuSeconds, redisPrimaryCpuSeconds, ...cores } = cpu;
  return {
    deliveriesPerSec: deliveries / seconds,
    messagesPerSec: sent / seconds,
    fanout: sent > 0 ? deliveries / sent : 0,
    serverUsPerDelivery: deliveries > 0 ? (serverCpuSeconds * 1e6) / deliveries : Number.NaN,
    redisUsPerMessage: sent > 0 ? (redisCpuSeconds * 1e6) / sent : Number.NaN,
    redisPrimaryUsPerMessage: sent > 0 ? (redisPrimaryCpuSeconds * 1e6) / sent : Number.NaN,
    ...cores,
    ...checked,
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
  await connect(pool, d, specsFor(d, members, rooms, tag, "m"), 30_000);
  // Let the join storm's presence traffic pass before timing anything.
  await sleep(300);
  // Sender g is member g: in room g mod rooms, on process g mod processes.
  await startOpenLoop(pool, senders, rate, plan.textLength);
  await sleep(100 + c.latencyWarmupMs);
  const meter = meterFor(pool, d);
  const s0 = await pool.all<Snapshot>({ cmd: "snapshot", reset: true }, 5000);
  meter.start();
  await sleep(c.latencyMeasureMs);
  const s1 = await pool.all<Snapshot>({ cmd: "snapshot", reset: true }, 5000);
  const cpu = split(meter.stop(), d);
  const roomSize = members / rooms;
  const checked = await settle(pool, roomSize);

  const hist = new Histogram();
  for (const s of s1) hist.add(s.latency, s.latencyMax * 1000);
  const seconds = median(s1.map((s, i) => (s.at - (s0[i] as Snapshot).at) / 1000));
  const deliveries = sum(s1, (s) => s.deliveries) - sum(s0, (s) => s.deliveries);
  const sent = sum(s1, (s) => s.sent) - sum(s0, (s) => s.sent);
  const { serverCpuSeconds, redisCpuSeconds, redisPrimaryCpuSeconds: _p, ...cores } = cpu;
  return {
    p50: hist.quantile(0.5),
    p99: hist.quantile(0.99),
    p999: hist.quantile(0.999),
    max: hist.max,
    samples: hist.count,
    delivered: deliveries / (rate * roomSize * seconds),
    sendLagMaxMs: Math.max(...s1.map((s) => s.sendLagMaxMs)),
    serverUsPerMessage: sent > 0 ? (serverCpuSeconds * 1e6) / sent : Number.NaN,
    redisUsPerMessage: sent > 0 ? (redisCpuSeconds * 1e6) / sent : Number.NaN,
    ...cores,
    ...checked,
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
        const d = await deploy(processesOf(variant, c), env, backend);
        try {
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
        } catch (err) {
          const tails = d.targets.map((t, i) => `--- server process ${i + 1} ---\n${t.tail()}`).join("\n");
          throw new Error(
            `redis-cluster ${label}, repetition ${rep + 1}: ${err instanceof Error ? err.message : String(err)}\n${tails}`,
          );
        } finally {
          await Promise.all(d.targets.map((t) => t.stop()));
        }
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
