/**
 * Scenario 5: plain HTTP with autocannon (under Node, as it is meant to run) on /healthz, /api/rooms
 * and the page, while idle WebSocket clients fill 100 rooms so that /api/rooms has work to do.
 */
import type { Plan } from "../config";
import type { Pool } from "../generator/pool";
import { cpuSeconds, machineTicks, NPROC, track } from "../processes";
import { ROOT, type ServerName } from "../servers";
import { median } from "../stats";
import {
  commonLimit,
  connectAll,
  forEachRun,
  type Limit,
  limitedBy,
  type Progress,
  place,
  targetOf,
} from "./common";

export interface HttpRun {
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
  serverCores: number;
  /** autocannon's own CPU use. */
  generatorCores: number;
  otherCores: number;
  limit: Limit;
}

export interface HttpResult {
  server: ServerName;
  route: string;
  runs: HttpRun[];
  median: HttpRun;
}

interface AutocannonJson {
  requests: { average: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
  timeouts: number;
}

const AUTOCANNON = `${ROOT}/node_modules/autocannon/autocannon.js`;

async function autocannon(
  url: string,
  connections: number,
  seconds: number,
  serverPid: number,
): Promise<HttpRun> {
  const proc = track(
    Bun.spawn({
      cmd: ["node", AUTOCANNON, "-c", String(connections), "-d", String(seconds), "-j", url],
      stdout: "pipe",
      stderr: "ignore",
      stdin: "ignore",
    }),
  );
  // autocannon's own start-up is not part of the measurement; its CPU is read until just before it
  // exits (a finished process has no /proc entry), every 50 ms.
  await Bun.sleep(300);
  const pids = [serverPid, proc.pid];
  const t0 = performance.now();
  const c0 = pids.map(cpuSeconds);
  const m0 = machineTicks();
  let last = { t: t0, c: c0, m: m0 };
  const poll = setInterval(() => {
    const c = pids.map(cpuSeconds);
    if (c.every(Number.isFinite)) last = { t: performance.now(), c, m: machineTicks() };
  }, 50);
  const timer = setTimeout(() => proc.kill("SIGKILL"), (seconds + 15) * 1000);
  const out = await new Response(proc.stdout as ReadableStream<Uint8Array>).text();
  await proc.exited;
  clearTimeout(timer);
  clearInterval(poll);
  const secs = (last.t - t0) / 1000;
  const cores = last.c.map((c, i) => (secs > 0 ? (c - (c0[i] as number)) / secs : Number.NaN));
  const busy = ((last.m.busy - m0.busy) / (last.m.total - m0.total)) * NPROC;
  const otherCores = Math.max(0, busy - cores.reduce((a, b) => a + b, 0));
  let parsed: AutocannonJson;
  try {
    parsed = JSON.parse(out.slice(out.indexOf("{"))) as AutocannonJson;
  } catch {
    throw new Error(`autocannon gave no JSON for ${url}: ${out.slice(0, 200)}`);
  }
  const serverCores = cores[0] as number;
  const generatorCores = cores[1] as number;
  return {
    requestsPerSec: parsed.requests.average,
    p50Ms: parsed.latency.p50,
    p99Ms: parsed.latency.p99,
    non2xx: parsed.non2xx,
    errors: parsed.errors + parsed.timeouts,
    serverCores,
    generatorCores,
    otherCores,
    limit: limitedBy(serverCores, [generatorCores]),
  };
}

export async function runHttp(plan: Plan, pool: Pool, progress: Progress): Promise<HttpResult[]> {
  const { routes, connections, seconds, servers, idleClients } = plan.http;
  const workers = pool.workers.length;
  const byServer = await forEachRun(servers, plan.reps, progress, async (target) => {
    const perWorker = place(
      Array.from({ length: idleClients }, (_, i) => ({ room: `h${i % 100}`, nick: `h${i}` })),
      workers,
    );
    await connectAll(pool, targetOf(target), perWorker, { timeoutMs: 20_000, what: "idle clients" });
    const runs: HttpRun[] = [];
    for (const route of routes) {
      runs.push(
        await autocannon(
          `http://${target.hostname}:${target.port}${route}`,
          connections,
          seconds,
          target.pid,
        ),
      );
    }
    await pool.all({ cmd: "close", timeoutMs: 3000 }, 5000);
    return runs;
  });
  const out: HttpResult[] = [];
  for (const [k, route] of routes.entries()) {
    for (const server of servers) {
      const runs = (byServer.get(server) ?? []).map((r) => r[k] as HttpRun);
      const m = (pick: (r: HttpRun) => number) => median(runs.map(pick));
      out.push({
        server,
        route,
        runs,
        median: {
          requestsPerSec: m((r) => r.requestsPerSec),
          p50Ms: m((r) => r.p50Ms),
          p99Ms: m((r) => r.p99Ms),
          non2xx: Math.max(...runs.map((r) => r.non2xx)),
          errors: Math.max(...runs.map((r) => r.errors)),
          serverCores: m((r) => r.serverCores),
          generatorCores: m((r) => r.generatorCores),
          otherCores: m((r) => r.otherCores),
          limit: commonLimit(runs.map((r) => r.limit)),
        },
      });
    }
  }
  return out;
}
