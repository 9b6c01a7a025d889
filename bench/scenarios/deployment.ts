/**
 * Chat processes deployed over Redis for scenarios 6 (cluster.ts) and 7 (redis-cluster.ts), and their
 * clients spread over them; measure.ts measures them.
 */
import type { ClientSpec } from "../generator/dialects";
import type { Pool } from "../generator/pool";
import { type RunningTarget, SERVERS, startTarget } from "../servers";
import { connectAll, place } from "./common";

/** Where the chat processes keep their state: the Redis processes to meter with them. */
export interface RedisPids {
  pids: number[];
  /** Per pid: true for a primary. */
  primary: boolean[];
}

export interface Deployment {
  targets: RunningTarget[];
  redis: RedisPids;
}

/**
 * Starts `count` chat processes with `env`, runs `body` on them and stops them, even on error; an
 * error names `what` and carries every process's last output.
 */
export async function withDeployment<R>(
  count: number,
  env: Record<string, string>,
  redis: RedisPids,
  what: string,
  body: (d: Deployment) => Promise<R>,
): Promise<R> {
  const started = await Promise.allSettled(
    Array.from({ length: count }, () => startTarget(SERVERS.ours, { env })),
  );
  const targets = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  try {
    const failed = started.find((s): s is PromiseRejectedResult => s.status === "rejected");
    if (failed) throw failed.reason;
    try {
      return await body({ targets, redis });
    } catch (err) {
      const tails = targets.map((t, i) => `--- server process ${i + 1} ---\n${t.tail()}`).join("\n");
      throw new Error(`${what}: ${err instanceof Error ? err.message : String(err)}\n${tails}`);
    }
  } finally {
    await Promise.all(targets.map((t) => t.stop()));
  }
}

/** Client `i` goes to chat process `i % processes`. */
export function spread(d: Deployment, count: number, spec: (i: number) => ClientSpec): ClientSpec[] {
  return Array.from({ length: count }, (_, i) => ({
    ...spec(i),
    port: (d.targets[i % d.targets.length] as RunningTarget).port,
  }));
}

/** Connects every client (checking seqs); each goes to its spec's port, the first process lends the rest. */
export async function connectSpread(
  pool: Pool,
  d: Deployment,
  specs: ClientSpec[],
  timeoutMs: number,
): Promise<void> {
  const first = d.targets[0] as RunningTarget;
  const target = { hostname: first.hostname, port: first.port, dialect: "chat-json" as const };
  await connectAll(pool, target, place(specs, pool.workers.length), {
    timeoutMs,
    what: "clients",
    checkSeq: true,
  });
}
