/** What every scenario shares: repetitions over servers, client placement, and who limited a result. */
import type { ClientSpec } from "../generator/dialects";
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
