/** What every scenario shares: repetitions over servers, client placement, and who limited a result. */
import { type ConnectResult, nowMs, type Target } from "../generator/commands";
import type { ClientSpec } from "../generator/dialects";
import type { Pool } from "../generator/pool";
import { type RunningTarget, SERVERS, type ServerName, startTarget } from "../servers";

/** A process at or above this share of one core counts as saturated (/proc ticks are 10 ms). */
export const SATURATED = 0.85;

export type Limit = "server" | "generator" | "both" | "neither";

/**
 * Who limited a measurement: a saturated generator means the server could have done more, so the
 * figure is a lower bound for that server; "neither" is a latency-bound pipeline.
 */
export function limitedBy(serverCores: number, generatorCores: number[]): Limit {
  const gen = Math.max(0, ...generatorCores) >= SATURATED;
  const srv = serverCores >= SATURATED;
  return gen && srv ? "both" : gen ? "generator" : srv ? "server" : "neither";
}

/** Cores busy outside the benchmark above which a measurement counts as disturbed. */
export const NOISE_CORES = 0.25;

/**
 * Measures up to `attempts` times while other processes on the machine disturb the measurement
 * (see `otherCores`), keeping the quietest: other test suites share these 2 cores.
 */
export async function quietest<R extends { otherCores: number }>(
  attempts: number,
  progress: Progress,
  measure: () => Promise<R>,
): Promise<R> {
  let best: R | undefined;
  for (let i = 0; i < Math.max(1, attempts); i++) {
    const r = await measure();
    if (!best || r.otherCores < best.otherCores) best = r;
    if (r.otherCores <= NOISE_CORES) break;
    if (i + 1 < attempts) progress(`    ${r.otherCores.toFixed(2)} cores busy elsewhere: measuring again`);
  }
  return best as R;
}

/** The most frequent verdict over repetitions (the first one on a tie). */
export function commonLimit<T extends string>(limits: readonly T[]): T | "neither" {
  let best: T | "neither" = limits[0] ?? "neither";
  let bestCount = 0;
  for (const l of limits) {
    const n = limits.filter((x) => x === l).length;
    if (n > bestCount) {
      best = l;
      bestCount = n;
    }
  }
  return best;
}

/** Rotates the order each repetition so that no server always runs first (warm caches, thermal). */
export function orderFor<T>(servers: readonly T[], rep: number): T[] {
  const k = rep % servers.length;
  return [...servers.slice(k), ...servers.slice(0, k)];
}

export type Progress = (line: string) => void;

/** Runs `body` once per repetition per server, each server a fresh process, stopped even on error. */
export async function forEachRun<R>(
  servers: readonly ServerName[],
  reps: number,
  progress: Progress,
  body: (target: RunningTarget, rep: number) => Promise<R>,
): Promise<Map<ServerName, R[]>> {
  const out = new Map<ServerName, R[]>(servers.map((s) => [s, []]));
  for (let rep = 0; rep < reps; rep++) {
    for (const name of orderFor(servers, rep)) {
      const target = await startTarget(SERVERS[name]);
      try {
        out.get(name)?.push(await body(target, rep));
      } catch (err) {
        throw new Error(
          `${name}, repetition ${rep + 1}: ${err instanceof Error ? err.message : String(err)}\n--- server output ---\n${target.tail()}`,
        );
      } finally {
        await target.stop();
      }
      progress(`  ${name} rep ${rep + 1}/${reps} done`);
    }
  }
  return out;
}

/** Client `i` goes to worker `i % workers`, at local index `floor(i / workers)`. */
export function place(specs: readonly ClientSpec[], workers: number): ClientSpec[][] {
  const out: ClientSpec[][] = Array.from({ length: workers }, () => []);
  for (const [i, spec] of specs.entries()) out[i % workers]?.push(spec);
  return out;
}

export function localIndex(i: number, workers: number): { worker: number; index: number } {
  return { worker: i % workers, index: Math.floor(i / workers) };
}

export function sleep(ms: number): Promise<void> {
  return Bun.sleep(ms);
}

/** Sum of a numeric field over worker answers. */
export function sum<T>(items: readonly T[], pick: (t: T) => number): number {
  return items.reduce((n, t) => n + pick(t), 0);
}

/** Where generator clients connect to reach a server under test. */
export function targetOf(t: RunningTarget): Target {
  return { hostname: t.hostname, port: t.port, dialect: t.def.dialect };
}

/**
 * Connects every client (worker `i` takes `perWorker[i]`) and throws if any failed, naming `what`:
 * a scenario measured with missing clients would report a figure for a different load.
 */
export async function connectAll(
  pool: Pool,
  target: Target,
  perWorker: readonly ClientSpec[][],
  opts: { timeoutMs: number; what: string; concurrency?: number; checkSeq?: boolean },
): Promise<ConnectResult[]> {
  const connected = await pool.all<ConnectResult>(
    (_w, i) => ({
      cmd: "connect",
      target,
      clients: perWorker[i] ?? [],
      idBase: i * 100_000,
      concurrency: opts.concurrency ?? 200,
      timeoutMs: opts.timeoutMs,
      ...(opts.checkSeq ? { checkSeq: true } : {}),
    }),
    opts.timeoutMs + 5000,
  );
  const failed = sum(connected, (c) => c.failed);
  if (failed > 0) {
    throw new Error(
      `${failed} ${opts.what} failed to connect: ${connected.find((c) => c.firstError)?.firstError}`,
    );
  }
  return connected;
}

/** Closed loop on every connected client: each keeps `window` messages in flight. */
export async function startClosedLoop(
  pool: Pool,
  perWorker: readonly ClientSpec[][],
  window: number,
  textLength: number,
): Promise<void> {
  await pool.all(
    (_w, i) => ({
      cmd: "closedLoop",
      senders: (perWorker[i] ?? []).map((_, k) => k),
      window,
      textLength,
    }),
    5000,
  );
}

/**
 * Open loop: members 0..senders-1 send `rate` messages a second in all, spread evenly in time
 * (sender g starts g/rate seconds after the first), from 100 ms from now.
 */
export async function startOpenLoop(
  pool: Pool,
  senders: number,
  rate: number,
  textLength: number,
): Promise<void> {
  const workers = pool.workers.length;
  const spacingMs = 1000 / rate;
  const startAt = nowMs() + 100;
  const plans: Array<Array<[number, number]>> = Array.from({ length: workers }, () => []);
  for (let g = 0; g < senders; g++) {
    const { worker, index } = localIndex(g, workers);
    plans[worker]?.push([index, g * spacingMs]);
  }
  await pool.all(
    (_w, i) => ({ cmd: "openLoop", senders: plans[i] ?? [], rate: rate / senders, startAt, textLength }),
    5000,
  );
}
