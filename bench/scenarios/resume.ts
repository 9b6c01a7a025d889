/**
 * Scenario 4: resume. Clients join, leave, miss `missed` messages per room (sent by one writer per
 * room), then all reconnect at once with `since` (and their resume token); each welcome must carry
 * exactly the messages it missed.
 */
import type { Plan } from "../config";
import type { ConnectResult } from "../generator/commands";
import type { Pool } from "../generator/pool";
import type { ServerName } from "../servers";
import { Histogram, median } from "../stats";
import { connectAll, forEachRun, type Progress, place, sum } from "./common";

export interface ResumeRun {
  clients: number;
  reconnected: number;
  /** Wall time from the first reconnect to the last welcome. */
  stormMs: number;
  readyP50Ms: number;
  readyP99Ms: number;
  /** Fewest and most messages in a welcome's history: both should equal `missed`. */
  historyMin: number;
  historyMax: number;
  truncated: number;
  serverUsPerResume: number;
  otherCores: number;
}

export interface ResumeResult {
  server: ServerName;
  clients: number;
  missed: number;
  runs: ResumeRun[];
  median: ResumeRun;
}

export async function runResume(
  plan: Plan,
  pool: Pool,
  writers: Pool,
  progress: Progress,
): Promise<ResumeResult[]> {
  const { clients, rooms, missed, servers } = plan.resume;
  const workers = pool.workers.length;
  const byServer = await forEachRun(servers, plan.reps, progress, async (target, rep) => {
    const t = { hostname: target.hostname, port: target.port, dialect: target.def.dialect };
    const room = (k: number) => `rs${rep}-${k}`;
    const perWorker = place(
      Array.from({ length: clients }, (_, i) => ({ room: room(i % rooms), nick: `r${i}` })),
      workers,
    );
    await connectAll(pool, t, perWorker, { timeoutMs: 30_000, what: "clients" });
    await pool.all({ cmd: "close", timeoutMs: 5000 }, 10_000);
    // A client whose close the server has not handled yet would still see the first missed messages.
    await serverEmpty(target.hostname, target.port);

    const writerSpecs = Array.from({ length: rooms }, (_, k) => ({ room: room(k), nick: `writer${k}` }));
    const w = await writers.all<ConnectResult>(
      {
        cmd: "connect",
        target: t,
        clients: writerSpecs,
        idBase: 900_000,
        concurrency: 50,
        timeoutMs: 10_000,
      },
      15_000,
    );
    if (sum(w, (c) => c.failed) > 0)
      throw new Error(`writers failed to connect: ${w.find((c) => c.firstError)?.firstError}`);
    await writers.all(
      {
        cmd: "closedLoop",
        senders: writerSpecs.map((_, k) => k),
        window: 4,
        textLength: plan.textLength,
        limit: missed,
      },
      5000,
    );
    await writers.all({ cmd: "stopSending", timeoutMs: 30_000, spendBudget: true }, 35_000);
    await writers.all({ cmd: "close", timeoutMs: 5000 }, 10_000);

    const meter = pool.meter(target.pid);
    meter.start();
    const again = await pool.all<ConnectResult>(
      { cmd: "reconnect", concurrency: 200, timeoutMs: 30_000 },
      35_000,
    );
    const cpu = meter.stop();
    await pool.all({ cmd: "close", timeoutMs: 5000 }, 10_000);
    const ready = new Histogram();
    for (const c of again) ready.add(c.readyHist, c.readyMax * 1000);
    const ok = sum(again, (c) => c.connected);
    return {
      clients,
      reconnected: ok,
      stormMs: Math.max(...again.map((c) => c.ms)),
      readyP50Ms: ready.quantile(0.5) / 1000,
      readyP99Ms: ready.quantile(0.99) / 1000,
      historyMin: Math.min(...again.map((c) => c.historyMin)),
      historyMax: Math.max(...again.map((c) => c.historyMax)),
      truncated: sum(again, (c) => c.truncated),
      serverUsPerResume: ok > 0 ? ((cpu.cpuSeconds[0] as number) * 1e6) / ok : Number.NaN,
      otherCores: cpu.otherCores,
    } satisfies ResumeRun;
  });
  return servers.map((server) => {
    const runs = byServer.get(server) ?? [];
    const m = (pick: (r: ResumeRun) => number) => median(runs.map(pick));
    return {
      server,
      clients,
      missed,
      runs,
      median: {
        clients,
        reconnected: m((r) => r.reconnected),
        stormMs: m((r) => r.stormMs),
        readyP50Ms: m((r) => r.readyP50Ms),
        readyP99Ms: m((r) => r.readyP99Ms),
        historyMin: Math.min(...runs.map((r) => r.historyMin)),
        historyMax: Math.max(...runs.map((r) => r.historyMax)),
        truncated: Math.max(...runs.map((r) => r.truncated)),
        serverUsPerResume: m((r) => r.serverUsPerResume),
        otherCores: m((r) => r.otherCores),
      },
    };
  });
}

/** Waits (up to 10 s) until the server's /healthz counts no connection; a server without one is not waited for. */
async function serverEmpty(hostname: string, port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`http://${hostname}:${port}/healthz`);
      if (!res.ok) return;
      const { connections } = (await res.json()) as { connections?: number };
      if (typeof connections !== "number" || connections === 0) return;
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
