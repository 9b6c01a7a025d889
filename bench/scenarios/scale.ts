/**
 * Scenario 3: connection scale. Idle clients with nicknames in rooms of `perRoom`, opened as one
 * storm from several generator processes and source addresses; then the server's memory per
 * connection and one chat in every room, timed until every client has it.
 */
import type { Plan } from "../config";
import { type BroadcastResult, type ConnectResult, nowMs } from "../generator/commands";
import type { Pool } from "../generator/pool";
import { memory } from "../processes";
import type { ServerName } from "../servers";
import { Histogram, median } from "../stats";
import { forEachRun, localIndex, type Progress, place, sleep, sum } from "./common";

export interface ScaleRun {
  attempted: number;
  connected: number;
  firstError: string | undefined;
  /** Wall time from the first handshake to the last welcome. */
  stormMs: number;
  readyP50Ms: number;
  readyP99Ms: number;
  /** Server CPU time per connection during the storm, in microseconds. */
  serverUsPerJoin: number;
  rssBefore: number;
  rssAfter: number;
  peakRss: number;
  bytesPerConnection: number;
  /** One chat in every room: first send to the last client's receipt. */
  broadcastMs: number;
  broadcastMissing: number;
  otherCores: number;
}

export interface ScaleResult {
  server: ServerName;
  connections: number;
  runs: ScaleRun[];
  median: ScaleRun;
}

export async function runScale(plan: Plan, pool: Pool, progress: Progress): Promise<ScaleResult[]> {
  const { connections, perRoom, sources, concurrency, servers, reps } = plan.scale;
  const workers = pool.workers.length;
  const rooms = Math.ceil(connections / perRoom);
  const byServer = await forEachRun(servers, reps, progress, async (target, rep) => {
    const specs = Array.from({ length: connections }, (_, i) => ({
      room: `sc${rep}-${i % rooms}`,
      nick: `n${i}`,
      localAddress: sources[i % sources.length],
    }));
    const perWorker = place(specs, workers);
    await sleep(200);
    const before = memory(target.pid);
    const meter = pool.meter(target.pid);
    meter.start();
    const connected = await pool.all<ConnectResult>(
      (_w, i) => ({
        cmd: "connect",
        target: { hostname: target.hostname, port: target.port, dialect: target.def.dialect },
        clients: perWorker[i] ?? [],
        idBase: i * 100_000,
        concurrency,
        timeoutMs: 90_000,
      }),
      95_000,
    );
    const storm = meter.stop();
    const ready = new Histogram();
    for (const c of connected) ready.add(c.readyHist, c.readyMax * 1000);
    const ok = sum(connected, (c) => c.connected);
    // Presence traffic of the storm drains, then memory settles.
    await sleep(1000);
    const after = memory(target.pid);

    await pool.all({ cmd: "arm" }, 5000);
    const senders: number[][] = Array.from({ length: workers }, () => []);
    for (let r = 0; r < Math.min(rooms, connections); r++) {
      const { worker, index } = localIndex(r, workers);
      senders[worker]?.push(index);
    }
    const at = nowMs() + 100;
    const cast = await pool.all<BroadcastResult>(
      (_w, i) => ({
        cmd: "broadcast",
        senders: senders[i] ?? [],
        at,
        textLength: plan.textLength,
        timeoutMs: 20_000,
      }),
      25_000,
    );
    const firstSend = Math.min(...cast.map((c) => c.firstSendAt).filter(Number.isFinite));
    const missing = sum(cast, (c) => c.missing);
    const done = Math.max(...cast.map((c) => (Number.isFinite(c.doneAt) ? c.doneAt : 0)));
    await pool.all({ cmd: "close", timeoutMs: 5000 }, 10_000);
    return {
      attempted: connections,
      connected: ok,
      firstError: connected.find((c) => c.firstError)?.firstError,
      stormMs: Math.max(...connected.map((c) => c.ms)),
      readyP50Ms: ready.quantile(0.5) / 1000,
      readyP99Ms: ready.quantile(0.99) / 1000,
      serverUsPerJoin: ok > 0 ? ((storm.cpuSeconds[0] as number) * 1e6) / ok : Number.NaN,
      rssBefore: before.rss,
      rssAfter: after.rss,
      peakRss: after.peak,
      bytesPerConnection: ok > 0 ? (after.rss - before.rss) / ok : Number.NaN,
      broadcastMs: missing === 0 ? done - firstSend : Number.NaN,
      broadcastMissing: missing,
      otherCores: storm.otherCores,
    } satisfies ScaleRun;
  });
  return servers.map((server) => {
    const runs = byServer.get(server) ?? [];
    const m = (pick: (r: ScaleRun) => number) => median(runs.map(pick));
    return {
      server,
      connections,
      runs,
      median: {
        attempted: connections,
        connected: m((r) => r.connected),
        firstError: runs.find((r) => r.firstError)?.firstError,
        stormMs: m((r) => r.stormMs),
        readyP50Ms: m((r) => r.readyP50Ms),
        readyP99Ms: m((r) => r.readyP99Ms),
        serverUsPerJoin: m((r) => r.serverUsPerJoin),
        rssBefore: m((r) => r.rssBefore),
        rssAfter: m((r) => r.rssAfter),
        peakRss: m((r) => r.peakRss),
        bytesPerConnection: m((r) => r.bytesPerConnection),
        broadcastMs: m((r) => r.broadcastMs),
        broadcastMissing: Math.max(...runs.map((r) => r.broadcastMissing)),
        otherCores: m((r) => r.otherCores),
      },
    };
  });
}
