/**
 * The benchmark suite: `bun bench/run.ts [--quick | --smoke] [--only a,b] [--servers a,b] [--out file]`
 * or `--profile`. `--only cluster` runs just the scale-out scenario (our server as 2 processes on a
 * private redis-server); `--only redis-cluster` just the Redis Cluster one (3 processes on a private
 * 3-primary cluster). Starts each server under test as its own process, drives it from generator
 * processes, prints tables, writes results JSON (and bench/RESULTS.md after a full run).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg, release } from "node:os";
import { dirname, join, relative } from "node:path";
import { type Mode, PLANS, type Plan } from "./config";
import { Pool } from "./generator/pool";
import { installCleanup, killAll, NPROC } from "./processes";
import { renderProfile, runProfile } from "./profile";
import {
  checkTargets,
  findProblems,
  type Machine,
  markdown,
  otherRatios,
  type Results,
  renderText,
  tables,
} from "./report";
import { runCluster } from "./scenarios/cluster";
import { runHttp } from "./scenarios/http";
import { runLatency } from "./scenarios/latency";
import { runRedisCluster } from "./scenarios/redis-cluster";
import { runResume } from "./scenarios/resume";
import { runScale } from "./scenarios/scale";
import { runThroughput } from "./scenarios/throughput";
import { ROOT, SERVERS, type ServerName } from "./servers";

const SCENARIOS = ["throughput", "latency", "scale", "resume", "http", "cluster", "redis-cluster"] as const;
type Scenario = (typeof SCENARIOS)[number];

/**
 * However it goes, the suite ends by then: a stuck step cannot hold a CI job or a terminal. A quiet
 * full run takes about 12 minutes (redis-cluster about 5 of them), a quick one under 2; measurements
 * repeated while other work loads the machine can nearly double that.
 */
const DEADLINE_MS: Record<Mode, number> = { full: 25 * 60_000, quick: 4 * 60_000, smoke: 90_000 };

const USAGE = `usage: bun bench/run.ts [--quick | --smoke] [--only ${SCENARIOS.join(",")}]
                        [--servers ${Object.keys(SERVERS).join(",")}] [--reps N] [--out FILE]
       bun bench/run.ts --profile     CPU profile of ours under the broadcast load`;

interface Options {
  mode: Mode;
  only: Scenario[];
  servers: ServerName[] | undefined;
  reps: number | undefined;
  out: string | undefined;
  profile: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    mode: "full",
    only: [...SCENARIOS],
    servers: undefined,
    reps: undefined,
    out: undefined,
    profile: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === "--quick") o.mode = "quick";
    else if (arg === "--smoke") o.mode = "smoke";
    else if (arg === "--full") o.mode = "full";
    else if (arg === "--profile") o.profile = true;
    else if (arg === "--out") o.out = value();
    else if (arg === "--reps") o.reps = Number(value());
    else if (arg === "--only") {
      const list = value().split(",") as Scenario[];
      for (const s of list) if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s}`);
      o.only = list;
    } else if (arg === "--servers") {
      const list = value().split(",") as ServerName[];
      for (const s of list) if (!(s in SERVERS)) throw new Error(`unknown server ${s}`);
      o.servers = list;
    } else if (arg === "--help" || arg === "-h") {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}\n${USAGE}`);
  }
  if (o.reps !== undefined && !(Number.isInteger(o.reps) && o.reps >= 1 && o.reps <= 20)) {
    throw new Error("--reps must be 1..20");
  }
  return o;
}

/** Servers no plan runs unless `--servers` names them; then the throughput scenario runs them wherever it runs ours. */
const OPT_IN: ServerName[] = ["ours-deno"];

function planFor(o: Options): Plan {
  const base = PLANS[o.mode];
  const keep = (list: ServerName[]) => (o.servers ? list.filter((s) => o.servers?.includes(s)) : list);
  const optIn = OPT_IN.filter((s) => o.servers?.includes(s));
  const withOptIn = (list: ServerName[]) => (list.includes("ours") ? [...list, ...optIn] : list);
  return {
    ...base,
    reps: o.reps ?? base.reps,
    servers: keep(base.servers),
    throughput: {
      ...base.throughput,
      configs: base.throughput.configs.map((c) => (c.servers ? { ...c, servers: withOptIn(c.servers) } : c)),
      servers: keep(withOptIn(base.throughput.servers)),
    },
    scale: { ...base.scale, servers: keep(base.scale.servers) },
    resume: { ...base.resume, servers: keep(base.resume.servers) },
    http: { ...base.http, servers: keep(base.http.servers) },
    cluster: { ...base.cluster, reps: o.reps ?? base.cluster.reps },
    redisCluster: { ...base.redisCluster, reps: o.reps ?? base.redisCluster.reps },
  };
}

function machine(): Machine {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const meminfo = readFileSync("/proc/meminfo", "utf8");
  const sh = (cmd: string[]) => Bun.spawnSync(cmd).stdout.toString().trim();
  return {
    nproc: NPROC,
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown",
    memoryGiB: Number(/^MemTotal:\s+(\d+)/m.exec(meminfo)?.[1] ?? 0) / 1024 / 1024,
    kernel: release(),
    bun: Bun.version,
    node: sh(["node", "--version"]).replace(/^v/, ""),
    openFileLimit: sh(["sh", "-c", "ulimit -n"]),
    loadAverageAtStart: loadavg(),
  };
}

/** Deno against Bun (ours-deno / ours), per throughput configuration both ran. */
function runtimeRatios(r: Results): string[] {
  const tp = r.throughput ?? [];
  const lines: string[] = [];
  for (const cfg of r.plan.throughput.configs) {
    const bun = tp.find((t) => t.config === cfg.name && t.server === "ours")?.median;
    const deno = tp.find((t) => t.config === cfg.name && t.server === "ours-deno")?.median;
    if (!bun || !deno) continue;
    lines.push(
      `ours-deno / ours, ${cfg.name}: throughput ${(deno.deliveriesPerSec / bun.deliveriesPerSec).toFixed(2)}x ` +
        `(${Math.round(deno.deliveriesPerSec)} vs ${Math.round(bun.deliveriesPerSec)} deliveries/s), ` +
        `server CPU per delivery ${(deno.serverUsPerDelivery / bun.serverUsPerDelivery).toFixed(2)}x ` +
        `(${deno.serverUsPerDelivery.toFixed(3)} vs ${bun.serverUsPerDelivery.toFixed(3)} µs; ` +
        `server cores ${deno.serverCores.toFixed(2)} vs ${bun.serverCores.toFixed(2)}, limited by ${deno.limit} vs ${bun.limit})`,
    );
  }
  return lines;
}

function commandLine(argv: string[]): string {
  const args = argv.join(" ");
  if (process.env.npm_lifecycle_event === "bench") return `npm run bench${args ? ` -- ${args}` : ""}`;
  return `bun bench/run.ts${args ? ` ${args}` : ""}`;
}

/** Where results go: a full, unfiltered run replaces bench/results.json; anything else goes to data/. */
function outputPath(o: Options, partial: boolean): string {
  if (o.out) return o.out;
  if (o.mode === "full" && !partial) return join(ROOT, "bench", "results.json");
  return join(ROOT, "data", "bench", `results-${o.mode}${partial ? "-partial" : ""}.json`);
}

async function main(): Promise<number> {
  installCleanup();
  const argv = process.argv.slice(2);
  const o = parseArgs(argv);
  const plan = planFor(o);
  const began = performance.now();
  const log = (line: string) => console.log(line);
  const deadline = setTimeout(() => {
    console.error(`bench: gave up after ${DEADLINE_MS[o.mode] / 1000} s`);
    killAll();
    process.exit(2);
  }, DEADLINE_MS[o.mode]);

  if (o.profile) {
    log("profiling ours under the broadcast scenario (bun --cpu-prof)...");
    const { summary, runs } = await runProfile(plan, join(ROOT, "data", "bench"), log);
    for (const r of runs)
      log(`  ${Math.round(r.deliveriesPerSec).toLocaleString("en-US")} deliveries/s while profiled`);
    log(renderProfile(summary));
    log(`profile: ${relative(ROOT, summary.file)} (open it in Chrome DevTools or speedscope)`);
    clearTimeout(deadline);
    return 0;
  }

  const results: Results = {
    mode: o.mode,
    command: commandLine(argv),
    startedAt: new Date().toISOString(),
    durationSeconds: 0,
    machine: machine(),
    plan,
    targets: [],
    ratios: [],
    problems: [],
  };
  log(`bench (${o.mode}): ${o.only.join(", ")} on ${plan.servers.join(", ")}; ${plan.reps} repetition(s)`);
  log(
    `machine: ${results.machine.nproc} cores, ${results.machine.cpuModel}; load average ${results.machine.loadAverageAtStart.map((x) => x.toFixed(2)).join(" ")}`,
  );

  const phase = async <T>(
    name: Scenario,
    workers: number,
    body: (pool: Pool) => Promise<T>,
  ): Promise<T | undefined> => {
    if (!o.only.includes(name)) return undefined;
    const t0 = performance.now();
    log(`${name}...`);
    const pool = new Pool(workers);
    try {
      return await body(pool);
    } finally {
      await pool.close();
      log(`${name} took ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  };

  results.throughput = await phase("throughput", plan.throughput.workers, (pool) =>
    runThroughput(plan, pool, log),
  );
  results.latency = await phase("latency", plan.latency.workers, (pool) => runLatency(plan, pool, log));
  results.scale = await phase("scale", plan.scale.workers, (pool) => runScale(plan, pool, log));
  results.resume = await phase("resume", 1, async (pool) => {
    const writers = new Pool(1);
    try {
      return await runResume(plan, pool, writers, log);
    } finally {
      await writers.close();
    }
  });
  results.http = await phase("http", 1, (pool) => runHttp(plan, pool, log));
  results.cluster = await phase("cluster", plan.cluster.workers, (pool) => runCluster(plan, pool, log));
  results.redisCluster = await phase("redis-cluster", plan.redisCluster.workers, (pool) =>
    runRedisCluster(plan, pool, log),
  );

  results.durationSeconds = (performance.now() - began) / 1000;
  results.targets = checkTargets(results);
  results.ratios = otherRatios(results);
  results.problems = findProblems(results);
  log("");
  for (const t of tables(results)) log(`${renderText(t)}\n`);
  for (const line of runtimeRatios(results)) log(line);
  for (const p of results.problems) log(`PROBLEM: ${p}`);

  const partial = o.only.length !== SCENARIOS.length || o.servers !== undefined || o.reps !== undefined;
  const out = outputPath(o, partial);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  log(`results: ${relative(process.cwd(), out)}`);
  if (o.mode === "full" && !partial && !o.out) {
    const md = join(ROOT, "bench", "RESULTS.md");
    writeFileSync(md, markdown(results));
    log(`summary: ${relative(process.cwd(), md)}`);
  }
  log(`bench (${o.mode}) took ${results.durationSeconds.toFixed(1)} s`);
  clearTimeout(deadline);
  return results.problems.length === 0 ? 0 : 1;
}

main().then(
  (code) => {
    killAll();
    process.exit(code);
  },
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    killAll();
    process.exit(1);
  },
);
