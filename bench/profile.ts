/**
 * `--profile`: runs our server under `bun --cpu-prof` through the broadcast scenario and sums the
 * profile's self time by function and by file, to show where a delivery's CPU goes.
 */
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import type { Plan } from "./config";
import { Pool } from "./generator/pool";
import { fixed, renderText, type Table } from "./report";
import { measureThroughput, type ThroughputRun } from "./scenarios/throughput";
import { ROOT, SERVERS, startTarget } from "./servers";

interface CpuProfile {
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
  }>;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  byFunction: Array<{ name: string; where: string; ms: number; share: number }>;
  byFile: Array<{ where: string; ms: number; share: number }>;
}

function place(url: string): string {
  if (!url) return "(native / runtime)";
  const path = url.replace(/^file:\/\//, "");
  return path.startsWith(ROOT) ? relative(ROOT, path) : path;
}

export function summarize(file: string, top = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, { name: string; where: string; ms: number }>();
  const files = new Map<string, number>();
  let totalMs = 0;
  profile.samples.forEach((id, i) => {
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    const node = nodes.get(id);
    if (!node) return;
    totalMs += ms;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = `${place(url)}${url ? `:${lineNumber + 1}` : ""}`;
    const name = functionName || "(anonymous)";
    const key = `${name}@${where}`;
    const entry = self.get(key) ?? { name, where, ms: 0 };
    entry.ms += ms;
    self.set(key, entry);
    files.set(place(url), (files.get(place(url)) ?? 0) + ms);
  });
  const share = (ms: number) => (totalMs > 0 ? ms / totalMs : 0);
  return {
    file,
    totalMs,
    byFunction: [...self.values()]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top)
      .map((e) => ({ ...e, share: share(e.ms) })),
    byFile: [...files.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([where, ms]) => ({ where, ms, share: share(ms) })),
  };
}

export function profileTables(s: ProfileSummary): Table[] {
  return [
    {
      title: `Self time by function (${Math.round(s.totalMs)} ms sampled)`,
      head: ["function", "where", "ms", "share"],
      rows: s.byFunction.map((f) => [f.name, f.where, fixed(f.ms, 0), `${fixed(f.share * 100, 1)}%`]),
      notes: [
        "Only time under a JS call is sampled: the event loop's own socket reads and writes (about half of the",
        "server's CPU under this load, as `perf` shows) are not in these tables. `run` is bun:sqlite's statement",
        "step (INSERT, and BEGIN/COMMIT); `publish` is server.publish writing to every subscriber.",
      ],
    },
    {
      title: "Self time by file",
      head: ["file", "ms", "share"],
      rows: s.byFile.map((f) => [f.where, fixed(f.ms, 0), `${fixed(f.share * 100, 1)}%`]),
    },
  ];
}

/** Profiles ours under the single-room and many-room broadcast loads; returns the summary. */
export async function runProfile(
  plan: Plan,
  outDir: string,
  progress: (line: string) => void,
): Promise<{ summary: ProfileSummary; runs: ThroughputRun[] }> {
  mkdirSync(outDir, { recursive: true });
  const name = `ours-${Date.now()}.cpuprofile`;
  const target = await startTarget(SERVERS.ours, {
    bunFlags: ["--cpu-prof", `--cpu-prof-dir=${outDir}`, `--cpu-prof-name=${name}`],
  });
  const pool = new Pool(plan.throughput.workers);
  const runs: ThroughputRun[] = [];
  try {
    const configs = plan.throughput.configs.filter((c) => c.clients === 64 || c.rooms > 1);
    for (const [k, cfg] of configs.entries()) {
      progress(`  profiling ours: ${cfg.name}`);
      const t = { hostname: target.hostname, port: target.port, dialect: target.def.dialect };
      runs.push(await measureThroughput(pool, target.pid, plan, cfg, t, `prof${k}`));
    }
  } finally {
    await pool.close();
    await target.stop();
  }
  const file = join(outDir, name);
  if (!readdirSync(outDir).includes(name)) throw new Error(`bun wrote no profile at ${file}`);
  return { summary: summarize(file), runs };
}

export function renderProfile(s: ProfileSummary): string {
  return profileTables(s).map(renderText).join("\n\n");
}
