/** Scenario 2: fan-out latency at a fixed rate (open loop): send time to each member's receipt. */
import type { Plan } from "../config";
import type { Snapshot } from "../generator/commands";
import type { Pool } from "../generator/pool";
import type { RunningTarget, ServerName } from "../servers";
import { median } from "../stats";
import {
  commonLimit,
  connectAll,
  forEachRun,
  type Limit,
  limitedBy,
  type Progress,
  place,
  quietest,
  sleep,
  startOpenLoop,
  sum,
  targetOf,
} from "./common";
import { latencyFigures } from "./measure";

export interface LatencyRun {
  /** Microseconds from the sender's write to each member's read. */
  p50: number;
  p99: number;
  p999: number;
  max: number;
  samples: number;
  /** Deliveries received over those expected at the offered rate: below ~0.99, the server fell behind. */
  delivered: number;
  serverCores: number;
  generatorCores: number;
  otherCores: number;
  /** Largest lag of a scheduled send in the generator, in ms. */
  sendLagMaxMs: number;
  limit: Limit;
}

export interface LatencyResult {
  server: ServerName;
  members: number;
  rate: number;
  runs: LatencyRun[];
  median: LatencyRun;
}

async function measureLatency(
  plan: Plan,
  pool: Pool,
  target: RunningTarget,
  room: string,
): Promise<LatencyRun> {
  const { members, rate, senders, warmupMs, measureMs } = plan.latency;
  const workers = pool.workers.length;
  const specs = Array.from({ length: members }, (_, i) => ({ room, nick: `m${i}` }));
  const perWorker = place(specs, workers);
  await connectAll(pool, targetOf(target), perWorker, { timeoutMs: 30_000, what: "members" });
  // Let the join storm's presence traffic pass before timing anything.
  await sleep(300);
  await startOpenLoop(pool, senders, rate, plan.textLength);
  await sleep(100 + warmupMs);
  const meter = pool.meter(target.pid);
  const s0 = await pool.all<Snapshot>({ cmd: "snapshot", reset: true }, 5000);
  meter.start();
  await sleep(measureMs);
  const s1 = await pool.all<Snapshot>({ cmd: "snapshot", reset: true }, 5000);
  const cpu = meter.stop();
  await pool.all({ cmd: "stopSending", timeoutMs: 3000 }, 5000);
  await pool.all({ cmd: "close", timeoutMs: 3000 }, 5000);

  const seconds = median(s1.map((s, i) => (s.at - (s0[i] as Snapshot).at) / 1000));
  const deliveries = sum(s1, (s) => s.deliveries) - sum(s0, (s) => s.deliveries);
  const generatorCores = cpu.cores.slice(1);
  return {
    ...latencyFigures({ end: s1, deliveries, seconds }, rate, members),
    serverCores: cpu.cores[0] as number,
    generatorCores: Math.max(...generatorCores),
    otherCores: cpu.otherCores,
    limit: limitedBy(cpu.cores[0] as number, generatorCores),
  } satisfies LatencyRun;
}

export async function runLatency(plan: Plan, pool: Pool, progress: Progress): Promise<LatencyResult[]> {
  const { members, rate } = plan.latency;
  const byServer = await forEachRun(plan.servers, plan.reps, progress, async (target, rep) => {
    let attempt = 0;
    return quietest(plan.attempts, progress, () =>
      measureLatency(plan, pool, target, `lat${rep}a${attempt++}`),
    );
  });
  return plan.servers.map((server) => {
    const runs = byServer.get(server) ?? [];
    const m = (pick: (r: LatencyRun) => number) => median(runs.map(pick));
    return {
      server,
      members,
      rate,
      runs,
      median: {
        p50: m((r) => r.p50),
        p99: m((r) => r.p99),
        p999: m((r) => r.p999),
        max: m((r) => r.max),
        samples: m((r) => r.samples),
        delivered: m((r) => r.delivered),
        serverCores: m((r) => r.serverCores),
        generatorCores: m((r) => r.generatorCores),
        otherCores: m((r) => r.otherCores),
        sendLagMaxMs: m((r) => r.sendLagMaxMs),
        limit: commonLimit(runs.map((r) => r.limit)),
      },
    };
  });
}
