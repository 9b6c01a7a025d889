/**
 * One measuring window over a deployment (deployment.ts) for scenarios 6 and 7: a closed or an open
 * loop, the CPU of every process split by role, the delivery checks once the clients stop, the
 * figures both scenarios report, and the median of several runs.
 */
import type { Snapshot } from "../generator/commands";
import type { ClientSpec } from "../generator/dialects";
import type { Pool } from "../generator/pool";
import { CpuMeter, type CpuReading, NPROC } from "../processes";
import { Histogram, median } from "../stats";
import { commonLimit, place, SATURATED, sleep, startClosedLoop, startOpenLoop, sum } from "./common";
import { connectSpread, type Deployment } from "./deployment";

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

export interface CpuSplit {
  /** Summed over the chat processes. */
  serverCores: number;
  /** One figure per chat process. */
  serverCoresEach: number[];
  /** Summed over every Redis process (a cluster's primaries and replicas). */
  redisCores: number;
  /** Summed over the primaries only (the single Redis is one). */
  redisPrimaryCores: number;
  /** The busiest Redis process: one Redis runs its commands on one thread. */
  redisCoresMax: number;
  generatorCores: number;
  otherCores: number;
  /** Which process sat at >= 0.85 of a core ("server", "redis", "generator"), "cores" when the machine was full. */
  limit: string;
}

/** What one measuring window saw, with the checks made once the clients stopped sending. */
export interface Measured {
  /** The workers' snapshots at its end (latency histograms, send lag). */
  end: Snapshot[];
  seconds: number;
  deliveries: number;
  sent: number;
  cpu: CpuSplit;
  serverCpuSeconds: number;
  redisCpuSeconds: number;
  redisPrimaryCpuSeconds: number;
  checked: Checked;
}

/** How long to let a loop run before measuring, how long to measure, and each chat's audience. */
export interface Timing {
  /** How long the clients may take to connect. */
  connectMs: number;
  warmupMs: number;
  measureMs: number;
  /** The members each chat must reach. */
  roomSize: number;
}

/** Connects `specs` and measures them in a closed loop: each client keeps `window` chats in flight. */
export async function measureClosedLoop(
  pool: Pool,
  d: Deployment,
  specs: ClientSpec[],
  load: { window: number; textLength: number },
  t: Timing,
): Promise<Measured> {
  await connectSpread(pool, d, specs, t.connectMs);
  await startClosedLoop(pool, place(specs, pool.workers.length), load.window, load.textLength);
  await sleep(t.warmupMs);
  return measureWindow(pool, d, t.measureMs, t.roomSize);
}

/** Connects `specs` and measures them in an open loop: members 0..senders-1 send `rate` chats a second. */
export async function measureOpenLoop(
  pool: Pool,
  d: Deployment,
  specs: ClientSpec[],
  load: { senders: number; rate: number; textLength: number },
  t: Timing,
): Promise<Measured> {
  await connectSpread(pool, d, specs, t.connectMs);
  // Let the join storm's presence traffic pass before timing anything.
  await sleep(300);
  await startOpenLoop(pool, load.senders, load.rate, load.textLength);
  // The loop starts 100 ms from now.
  await sleep(100 + t.warmupMs);
  return measureWindow(pool, d, t.measureMs, t.roomSize);
}

/** Counts deliveries and CPU for `measureMs` while the clients send, then settles. */
async function measureWindow(
  pool: Pool,
  d: Deployment,
  measureMs: number,
  roomSize: number,
): Promise<Measured> {
  const meter = new CpuMeter([...d.targets.map((t) => t.pid), ...d.redis.pids, ...pool.pids]);
  const s0 = await pool.all<Snapshot>({ cmd: "snapshot", reset: true }, 5000);
  meter.start();
  await sleep(measureMs);
  const s1 = await pool.all<Snapshot>({ cmd: "snapshot", reset: true }, 5000);
  const { cpu, ...cpuSeconds } = split(meter.stop(), d);
  const checked = await settle(pool, roomSize);
  return {
    end: s1,
    seconds: median(s1.map((s, i) => (s.at - (s0[i] as Snapshot).at) / 1000)),
    deliveries: sum(s1, (s) => s.deliveries) - sum(s0, (s) => s.deliveries),
    sent: sum(s1, (s) => s.sent) - sum(s0, (s) => s.sent),
    cpu,
    ...cpuSeconds,
    checked,
  };
}

/** The meter's pids are the chat processes, then the Redis ones, then the generator workers. */
function split(
  reading: CpuReading,
  d: Deployment,
): { cpu: CpuSplit; serverCpuSeconds: number; redisCpuSeconds: number; redisPrimaryCpuSeconds: number } {
  const servers = d.targets.length;
  const nodes = d.redis.pids.length;
  const serverCoresEach = reading.cores.slice(0, servers);
  const redisEach = reading.cores.slice(servers, servers + nodes);
  const generators = reading.cores.slice(servers + nodes);
  const parts: string[] = [];
  if (Math.max(0, ...serverCoresEach) >= SATURATED) parts.push("server");
  if (Math.max(0, ...redisEach) >= SATURATED) parts.push("redis");
  if (Math.max(0, ...generators) >= SATURATED) parts.push("generator");
  // A process gone before the end reads NaN: it counts as idle.
  const all = (xs: number[]) => sum(xs, (c) => (Number.isFinite(c) ? c : 0));
  const primaries = (xs: number[]) => xs.filter((_, i) => d.redis.primary[i]);
  const redisCpu = reading.cpuSeconds.slice(servers, servers + nodes);
  const busy = all(serverCoresEach) + all(redisEach) + all(generators) + reading.otherCores;
  if (busy >= 0.9 * NPROC) parts.push("cores");
  return {
    cpu: {
      serverCores: all(serverCoresEach),
      serverCoresEach,
      redisCores: all(redisEach),
      redisPrimaryCores: all(primaries(redisEach)),
      redisCoresMax: Math.max(0, ...redisEach),
      generatorCores: Math.max(0, ...generators),
      otherCores: reading.otherCores,
      limit: parts.length > 0 ? parts.join("+") : "neither",
    },
    serverCpuSeconds: all(reading.cpuSeconds.slice(0, servers)),
    redisCpuSeconds: all(redisCpu),
    redisPrimaryCpuSeconds: all(primaries(redisCpu)),
  };
}

export interface ThroughputFigures {
  deliveriesPerSec: number;
  messagesPerSec: number;
  fanout: number;
  /** Chat processes' CPU per delivery, summed over the processes, in microseconds. */
  serverUsPerDelivery: number;
}

export function throughputFigures(w: Measured): ThroughputFigures {
  return {
    deliveriesPerSec: w.deliveries / w.seconds,
    messagesPerSec: w.sent / w.seconds,
    fanout: w.sent > 0 ? w.deliveries / w.sent : 0,
    serverUsPerDelivery: w.deliveries > 0 ? (w.serverCpuSeconds * 1e6) / w.deliveries : Number.NaN,
  };
}

export interface LatencyFigures {
  p50: number;
  p99: number;
  p999: number;
  max: number;
  samples: number;
  /** Deliveries received over those the rate promised. */
  delivered: number;
  sendLagMaxMs: number;
}

/**
 * Fan-out latency of an open loop of `rate` chats a second, each to `roomSize` members, from the
 * workers' snapshots at the window's end (scenario 2 measures its window itself).
 */
export function latencyFigures(
  w: Pick<Measured, "end" | "deliveries" | "seconds">,
  rate: number,
  roomSize: number,
): LatencyFigures {
  const hist = new Histogram();
  for (const s of w.end) hist.add(s.latency, s.latencyMax * 1000);
  return {
    p50: hist.quantile(0.5),
    p99: hist.quantile(0.99),
    p999: hist.quantile(0.999),
    max: hist.max,
    samples: hist.count,
    delivered: w.deliveries / (rate * roomSize * w.seconds),
    sendLagMaxMs: Math.max(...w.end.map((s) => s.sendLagMaxMs)),
  };
}

/**
 * Stops sending, waits until nothing is in flight, and compares the totals since connecting: each
 * chat must have reached all `roomSize` members of its room.
 */
async function settle(pool: Pool, roomSize: number): Promise<Checked> {
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
