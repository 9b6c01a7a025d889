/**
 * The benchmark suite works end to end: `bun bench/run.ts --smoke` starts every server under test,
 * drives each scenario for a moment and writes sane results. No speed is asserted here.
 */
import { describe, expect, it } from "bun:test";
import { readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Results } from "../bench/report";

const ROOT = resolve(import.meta.dir, "..");
const SERVERS = ["ours", "raw-bun", "node-ws", "socket.io"];

async function runSmoke(out: string): Promise<{ code: number; output: string }> {
  const proc = Bun.spawn({
    cmd: [process.execPath, "bench/run.ts", "--smoke", "--out", out],
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
  });
  const killer = setTimeout(() => proc.kill("SIGKILL"), 75_000);
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  clearTimeout(killer);
  return { code, output: `${stdout}\n${stderr}` };
}

describe("bench --smoke", () => {
  it("drives every server through every scenario and writes results with real deliveries", async () => {
    const out = join(tmpdir(), `bench-smoke-${process.pid}-${Date.now()}.json`);
    try {
      const { code, output } = await runSmoke(out);
      if (code !== 0) console.error(output.slice(-4000));
      expect(code).toBe(0);
      const results = JSON.parse(readFileSync(out, "utf8")) as Results;
      expect(results.mode).toBe("smoke");
      expect(results.problems).toEqual([]);

      for (const server of SERVERS) {
        const tp = results.throughput?.find((t) => t.server === server);
        expect(tp?.median.deliveriesPerSec ?? 0).toBeGreaterThan(0);
        // 16 clients in one room: each message reaches all 16, the sender included.
        expect(tp?.median.fanout ?? 0).toBeCloseTo(16, 0);
        const lat = results.latency?.find((l) => l.server === server);
        expect(lat?.median.samples ?? 0).toBeGreaterThan(0);
        expect(lat?.median.p50 ?? 0).toBeGreaterThan(0);
      }
      for (const s of results.scale ?? []) {
        expect(s.median.connected).toBe(s.connections);
        expect(s.median.broadcastMissing).toBe(0);
      }
      expect(results.scale?.length ?? 0).toBeGreaterThan(0);
      for (const r of results.resume ?? []) {
        expect(r.median.reconnected).toBe(r.clients);
        expect([r.median.historyMin, r.median.historyMax]).toEqual([r.missed, r.missed]);
      }
      expect(results.resume?.length ?? 0).toBeGreaterThan(0);
      for (const h of results.http ?? []) expect(h.median.requestsPerSec).toBeGreaterThan(0);
      expect(results.http?.length ?? 0).toBeGreaterThan(0);

      // Ours with storage off runs the throughput scenario beside ours with storage on.
      const memory = results.throughput?.find((t) => t.server === "ours-memory");
      expect(memory?.median.fanout ?? 0).toBeCloseTo(16, 0);
      expect(results.ratios.some((r) => r.ratio.includes("ours / ours-memory"))).toBe(true);

      // Scale-out: 2 processes on one Redis, 1 on Redis, 1 on SQLite; skipped only without redis-server.
      const cluster = results.cluster;
      expect(cluster).toBeDefined();
      if (cluster && !cluster.skipped) {
        expect(cluster.variants.map((v) => v.processes)).toEqual([2, 1, 1]);
        for (const v of cluster.variants) {
          expect(v.throughput.median.deliveriesPerSec).toBeGreaterThan(0);
          expect(v.throughput.median.fanout).toBeCloseTo(16, 0);
          expect(v.latency.median.samples).toBeGreaterThan(0);
          for (const m of [v.throughput.median, v.latency.median]) {
            expect([m.missing, m.seqGaps, m.seqDupes, m.errors, m.unexpectedCloses]).toEqual([0, 0, 0, 0, 0]);
          }
        }
      }

      // Redis Cluster: 1 process on one Redis, 3 on a 3-primary cluster, the same with MIN_REPLICAS=1;
      // skipped only without redis-server or redis-cli.
      const rc = results.redisCluster;
      expect(rc).toBeDefined();
      if (rc && !rc.skipped) {
        expect(rc.variants.map((v) => [v.variant, v.processes])).toEqual([
          ["single", 1],
          ["cluster", 3],
          ["cluster-wait", 3],
        ]);
        for (const v of rc.variants) {
          for (const s of v.shapes) {
            expect(s.throughput.median.deliveriesPerSec).toBeGreaterThan(0);
            // Deliveries over sends in one short window: the sends at its start are delivered in it only
            // if the rate held, and 9 processes on 2 cores under other load moved it 16% once (CI). This
            // only catches a window measured wrong; the counts below check every delivery exactly.
            expect(Math.abs(s.throughput.median.fanout / (s.clients / s.rooms) - 1)).toBeLessThan(0.3);
            expect(s.fanout.median.samples).toBeGreaterThan(0);
            for (const m of [s.throughput.median, s.fanout.median]) {
              expect([m.missing, m.seqGaps, m.seqDupes, m.errors, m.unexpectedCloses]).toEqual([
                0, 0, 0, 0, 0,
              ]);
            }
          }
        }
        expect(results.ratios.some((r) => r.ratio.startsWith("MIN_REPLICAS=1 cost"))).toBe(true);
      }
    } finally {
      rmSync(out, { force: true });
    }
  }, 80_000);
});
