/** Scenario 1: broadcast throughput, closed loop: every client chats with a few messages in flight. */
import type { Plan, ThroughputConfig } from "../config";
import type { Snapshot, Target } from "../generator/commands";
import type { Pool } from "../generator/pool";
import type { ServerName } from "../servers";
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
  startClosedLoop,
  startOpenLoop,
  sum,
} from "./common";

export interface ThroughputRun {
  deliveriesPerSec: number;
  messagesPerSec: number;
  /** Deliveries per message sent: the room size when nothing is lost. */
  fanout: number;
  serverCores: number;
  generatorCores: number;
  /** Cores used by other processes on the machine meanwhile: noise when well above 0. */
  otherCores: number;
  /** Server CPU time per delivery, in microseconds. */
  serverUsPerDelivery: number;
  limit: Limit;
  errors: number;
  unexpectedCloses: number;
}

export interface ThroughputResult {
  config: string;
  server: ServerName;
  runs: ThroughputRun[];
  median: ThroughputRun;
}

export async function measureThroughput(
  pool: Pool,
  serverPid: number,
  plan: Plan,
  cfg: ThroughputConfig,
  target: Target,
  tag: string,
): Promise<ThroughputRun> {
  const workers = pool.workers.length;
  const specs = Array.from({ length: cfg.clients }, (_, i) => ({
    room: `${tag}-${i % cfg.rooms}`,
    nick: `u${i}`,
  }));
  const perWorker = place(specs, workers);
  await connectAll(pool, { ...target, client: cfg.client }, perWorker, {
    timeoutMs: 20_000,
    what: "clients",
  });
  if (cfg.pace) await startOpenLoop(pool, cfg.clients, cfg.pace, plan.textLength);
  else await startClosedLoop(pool, perWorker, cfg.window, plan.textLength);
  await sleep(plan.throughput.warmupMs);
  const meter = pool.meter(serverPid);
  const s0 = await pool.all<Snapshot>({ cmd: "snapshot", reset: true }, 5000);
  meter.start();
  await sleep(plan.throughput.measureMs);
  const s1 = await pool.all<Snapshot>({ cmd: "snapshot", reset: true }, 5000);
  const cpu = meter.stop();
  const firstError = s1.find((s) => s.firstError)?.firstError;
  if (firstError) console.error(`    ${tag}: ${sum(s1, (s) => s.errors)} error frames; first: ${firstError}`);
  await pool.all({ cmd: "stopSending", timeoutMs: 3000 }, 5000);
  await pool.all({ cmd: "close", timeoutMs: 3000 }, 5000);

  const seconds = median(s1.map((s, i) => (s.at - (s0[i] as Snapshot).at) / 1000));
  const deliveries = sum(s1, (s) => s.deliveries) - sum(s0, (s) => s.deliveries);
  const sent = sum(s1, (s) => s.sent) - sum(s0, (s) => s.sent);
  const serverCores = cpu.cores[0] as number;
  const generatorCores = cpu.cores.slice(1);
  return {
    deliveriesPerSec: deliveries / seconds,
    messagesPerSec: sent / seconds,
    fanout: sent > 0 ? deliveries / sent : 0,
    serverCores,
    generatorCores: Math.max(...generatorCores),
    otherCores: cpu.otherCores,
    serverUsPerDelivery: deliveries > 0 ? ((cpu.cpuSeconds[0] as number) * 1e6) / deliveries : Number.NaN,
    limit: limitedBy(serverCores, generatorCores),
    errors: sum(s1, (s) => s.errors),
    unexpectedCloses: sum(s1, (s) => s.unexpectedCloses),
  };
}

export function medianRun(runs: ThroughputRun[]): ThroughputRun {
  const m = (pick: (r: ThroughputRun) => number) => median(runs.map(pick));
  return {
    deliveriesPerSec: m((r) => r.deliveriesPerSec),
    messagesPerSec: m((r) => r.messagesPerSec),
    fanout: m((r) => r.fanout),
    serverCores: m((r) => r.serverCores),
    generatorCores: m((r) => r.generatorCores),
    otherCores: m((r) => r.otherCores),
    serverUsPerDelivery: m((r) => r.serverUsPerDelivery),
    limit: commonLimit(runs.map((r) => r.limit)),
    errors: Math.max(...runs.map((r) => r.errors)),
    unexpectedCloses: Math.max(...runs.map((r) => r.unexpectedCloses)),
  };
}

export async function runThroughput(plan: Plan, pool: Pool, progress: Progress): Promise<ThroughputResult[]> {
  const servers = plan.throughput.servers;
  const byServer = await forEachRun(servers, plan.reps, progress, async (target, rep) => {
    const runs: Array<ThroughputRun | undefined> = [];
    for (const [k, cfg] of plan.throughput.configs.entries()) {
      if (cfg.servers && !cfg.servers.includes(target.def.name)) {
        runs.push(undefined);
        continue;
      }
      const t = { hostname: target.hostname, port: target.port, dialect: target.def.dialect };
      let attempt = 0;
      runs.push(
        await quietest(plan.attempts, progress, () =>
          measureThroughput(pool, target.pid, plan, cfg, t, `tp${k}r${rep}a${attempt++}`),
        ),
      );
    }
    return runs;
  });
  const out: ThroughputResult[] = [];
  for (const [k, cfg] of plan.throughput.configs.entries()) {
    for (const server of servers) {
      const runs = (byServer.get(server) ?? []).flatMap((perConfig) => perConfig[k] ?? []);
      if (runs.length > 0) out.push({ config: cfg.name, server, runs, median: medianRun(runs) });
    }
  }
  return out;
}
