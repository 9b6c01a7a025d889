/** Turns a run's results into ratios, target verdicts, sanity problems, terminal tables and RESULTS.md. */
import type { Plan } from "./config";
import type { ClusterResult } from "./scenarios/cluster";
import { NOISE_CORES } from "./scenarios/common";
import type { HttpResult } from "./scenarios/http";
import type { LatencyResult } from "./scenarios/latency";
import type { Checked } from "./scenarios/measure";
import type { RedisClusterResult, RedisClusterVariantResult } from "./scenarios/redis-cluster";
import type { ResumeResult } from "./scenarios/resume";
import type { ScaleResult } from "./scenarios/scale";
import type { ThroughputResult } from "./scenarios/throughput";
import type { ServerName } from "./servers";

export interface Machine {
  nproc: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  bun: string;
  node: string;
  openFileLimit: string;
  loadAverageAtStart: number[];
}

export interface TargetCheck {
  target: string;
  want: string;
  got: string;
  /** null when the run did not measure it. */
  met: boolean | null;
  note?: string;
}

/** A ratio the run measures that has no target in the issue (storage on / off, N processes / 1). */
export interface RatioLine {
  ratio: string;
  value: number;
  got: string;
  note?: string;
}

export interface Results {
  mode: Plan["mode"];
  command: string;
  startedAt: string;
  durationSeconds: number;
  machine: Machine;
  plan: Plan;
  throughput?: ThroughputResult[];
  latency?: LatencyResult[];
  scale?: ScaleResult[];
  resume?: ResumeResult[];
  http?: HttpResult[];
  cluster?: ClusterResult;
  redisCluster?: RedisClusterResult;
  targets: TargetCheck[];
  ratios: RatioLine[];
  /** Sanity failures: a scenario that produced nothing, lost messages or failed connections. */
  problems: string[];
}

// ---- formatting ----

export function int(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "-";
}

export function fixed(n: number, digits = 2): string {
  return Number.isFinite(n) ? n.toFixed(digits) : "-";
}

/** Microseconds as a short human figure. */
export function micros(us: number): string {
  if (!Number.isFinite(us)) return "-";
  return us < 1000 ? `${Math.round(us)} µs` : `${(us / 1000).toFixed(us < 10_000 ? 2 : 1)} ms`;
}

export function bytes(n: number): string {
  if (!Number.isFinite(n)) return "-";
  if (Math.abs(n) < 10_000) return `${Math.round(n)} B`;
  if (Math.abs(n) < 10_000_000) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function ratio(a: number, b: number): number {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : Number.NaN;
}

const X = (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)}x` : "-");

export interface Table {
  title: string;
  head: string[];
  rows: string[][];
  notes?: string[];
}

export function renderText(t: Table): string {
  const widths = t.head.map((h, i) => Math.max(h.length, ...t.rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ");
  const out = [t.title, line(t.head), widths.map((w) => "-".repeat(w)).join("  "), ...t.rows.map(line)];
  for (const n of t.notes ?? []) out.push(`  ${n}`);
  return out.join("\n");
}

export function renderMarkdown(t: Table): string {
  const esc = (s: string) => s.replaceAll("|", "\\|");
  const out = [
    `### ${t.title}`,
    "",
    `| ${t.head.map(esc).join(" | ")} |`,
    `| ${t.head.map((_, i) => (i === 0 ? "---" : "---:")).join(" | ")} |`,
    ...t.rows.map((r) => `| ${r.map(esc).join(" | ")} |`),
  ];
  if (t.notes?.length) out.push("", ...t.notes.map((n) => `- ${n}`));
  return out.join("\n");
}

// ---- tables ----

function limitNote(limit: string): string {
  return limit === "generator" ? "generator" : limit === "both" ? "both" : limit;
}

function checkedNote(c: Checked): string {
  const parts: string[] = [];
  if (c.missing !== 0) parts.push(`${int(c.missing)} missing`);
  if (c.seqGaps > 0) parts.push(`${int(c.seqGaps)} gaps`);
  if (c.seqDupes > 0) parts.push(`${int(c.seqDupes)} dups`);
  if (c.errors > 0) parts.push(`${int(c.errors)} errors`);
  if (c.unexpectedCloses > 0) parts.push(`${int(c.unexpectedCloses)} closed`);
  return parts.length > 0 ? parts.join(", ") : "ok";
}

function clusterTables(r: Results, c: ClusterResult): Table[] {
  const n = c.processes;
  const title = `6. Scale-out: ${n} processes through one Redis vs 1 process`;
  if (c.skipped) return [{ title, head: ["server"], rows: [], notes: [`skipped: ${c.skipped}`] }];
  const cores = r.machine.nproc;
  return [
    {
      title: `${title}: broadcast throughput (${c.config}, closed loop, ${c.window} in flight per client)`,
      head: [
        "server",
        "deliveries/s",
        "msgs/s",
        "fan-out",
        "srv cores",
        "per process",
        "redis cores",
        "gen cores",
        "other",
        "srv µs/deliv",
        "+redis µs/deliv",
        "checked",
        "limited by",
      ],
      rows: c.variants.map((v) => {
        const m = v.throughput.median;
        return [
          v.label,
          int(m.deliveriesPerSec),
          int(m.messagesPerSec),
          fixed(m.fanout, 1),
          fixed(m.serverCores),
          m.serverCoresEach.map((x) => fixed(x)).join(" + "),
          fixed(m.redisCores),
          fixed(m.generatorCores),
          fixed(m.otherCores),
          fixed(m.serverUsPerDelivery, 3),
          fixed(m.totalUsPerDelivery, 3),
          checkedNote(m),
          m.limit,
        ];
      }),
      notes: [
        `Client i connects to process i mod ${n}, all in the same room, so most deliveries cross processes through Redis. srv cores: the server processes summed (each under "per process"); redis cores: the private redis-server (appendonly, fsync every second).`,
        "+redis µs/deliv: server and Redis CPU per delivery together.",
        `${c.window} messages in flight per client (scenario 1 keeps 4): every chat makes a round trip through Redis before it is delivered, so the closed loop needs more in flight; "neither" under limited by means that round trip, not a saturated process, set the pace.`,
        "checked: each client saw every chat of its room once, seq one above the one before (gaps, dups), and after the last echo the totals match: sent x room size = received (missing); 'ok' when all are zero.",
      ],
    },
    {
      title: `${title}: fan-out latency (${c.members} members, ${c.rate} msg/s)`,
      head: [
        "server",
        "p50",
        "p99",
        "p99.9",
        "max",
        "samples",
        "delivered",
        "srv cores",
        "redis cores",
        "gen cores",
        "other",
        "checked",
        "limited by",
      ],
      rows: c.variants.map((v) => {
        const m = v.latency.median;
        return [
          v.label,
          micros(m.p50),
          micros(m.p99),
          micros(m.p999),
          micros(m.max),
          int(m.samples),
          fixed(m.delivered, 3),
          fixed(m.serverCores),
          fixed(m.redisCores),
          fixed(m.generatorCores),
          fixed(m.otherCores),
          checkedNote(m),
          m.limit,
        ];
      }),
      notes: [
        `This machine has ${cores} core${cores === 1 ? "" : "s"}: the ${n} server processes, redis-server and the load generator compete for ${cores === 1 ? "it" : "them"} ("cores" under limited by: the machine was busy throughout), so ${n} processes here cannot do ${n} times the work of 1; these rows show what the hop through Redis costs on one machine, not what ${n} machines would do.`,
        "1 process + SQLite is the default setup (as 'ours' above); 1 process + Redis isolates the cost of Redis from that of a second process.",
      ],
    },
  ];
}

function redisClusterTables(r: Results, c: RedisClusterResult): Table[] {
  const title = `7. Redis Cluster: ${c.processes} processes on ${c.primaries} primaries (+${c.replicasPerPrimary} replica each) vs 1 process on one Redis`;
  if (c.skipped) return [{ title, head: ["server"], rows: [], notes: [`skipped: ${c.skipped}`] }];
  const cores = r.machine.nproc;
  const rows = <T>(
    pick: (v: RedisClusterVariantResult, s: RedisClusterVariantResult["shapes"][number]) => T[],
  ) => c.variants.flatMap((v) => v.shapes.map((s) => pick(v, s)));
  const shapes = c.variants[0]?.shapes ?? [];
  return [
    {
      title: `${title}: broadcast throughput (closed loop)`,
      head: [
        "shape / deployment",
        "deliveries/s",
        "msgs/s",
        "fan-out",
        "srv cores",
        "per process",
        "redis cores",
        "busiest node",
        "gen cores",
        "other",
        "srv µs/deliv",
        "redis µs/msg",
        "primaries µs/msg",
        "checked",
        "limited by",
      ],
      rows: rows((v, s) => {
        const m = s.throughput.median;
        return [
          `${s.shape} / ${v.label}`,
          int(m.deliveriesPerSec),
          int(m.messagesPerSec),
          fixed(m.fanout, 1),
          fixed(m.serverCores),
          m.serverCoresEach.map((x) => fixed(x)).join(" + "),
          fixed(m.redisCores),
          fixed(m.redisCoresMax),
          fixed(m.generatorCores),
          fixed(m.otherCores),
          fixed(m.serverUsPerDelivery, 3),
          fixed(m.redisUsPerMessage, 1),
          fixed(m.redisPrimaryUsPerMessage, 1),
          checkedNote(m),
          m.limit,
        ];
      }),
      notes: [
        `Shapes: ${shapes.map((s) => `${s.shape} (${s.window} in flight per client)`).join("; ")}. Client i connects to process i mod the processes, in room i mod the rooms; on the cluster the rooms are spread over 16 hash-tag partitions, so over every primary (one room: one partition, one primary).`,
        "Every Redis (the single one and each cluster node) writes its append-only file, fsync every second. redis cores: every node summed, replicas included; busiest node: one Redis runs its commands on one thread, so that node is the first to bind.",
        "srv µs/deliv: the chat processes' CPU per delivery, summed; redis µs/msg: every Redis node's CPU per chat stored (script, replication, the processes' stream reads and post fetches); primaries µs/msg: the same for the primaries only (the single Redis is one).",
        "MIN_REPLICAS=1: REDIS_MIN_REPLICAS=1, each chat's ack waits (WAIT) until a replica holds it. 1 process + cluster: the cost of the cluster (its client, partitions, one reader each) without the extra processes.",
        "checked: each client saw every chat of its room once, in seq order, and nothing is missing after the last echo ('ok').",
      ],
    },
    {
      title: `${title}: fan-out latency (open loop)`,
      head: [
        "shape / deployment",
        "p50",
        "p99",
        "p99.9",
        "max",
        "samples",
        "delivered",
        "srv cores",
        "redis cores",
        "gen cores",
        "other",
        "srv µs/msg",
        "redis µs/msg",
        "checked",
        "limited by",
      ],
      rows: rows((v, s) => {
        const m = s.fanout.median;
        return [
          `${s.shape} / ${v.label}`,
          micros(m.p50),
          micros(m.p99),
          micros(m.p999),
          micros(m.max),
          int(m.samples),
          fixed(m.delivered, 3),
          fixed(m.serverCores),
          fixed(m.redisCores),
          fixed(m.generatorCores),
          fixed(m.otherCores),
          int(m.serverUsPerMessage),
          int(m.redisUsPerMessage),
          checkedNote(m),
          m.limit,
        ];
      }),
      notes: [
        "srv µs/msg, redis µs/msg: the chat processes' (summed) and the Redis nodes' CPU per chat at this rate, where few chats share a batch or a reader's wake-up: many times the closed loop's figure, and the one a lightly loaded deployment pays.",
        `Loads: ${shapes.map((s) => `${s.shape}: ${int(s.latency.members)} members in ${s.latency.rooms} room${s.latency.rooms === 1 ? "" : "s"}, ${int(s.latency.rate)} msg/s from ${s.latency.senders} senders`).join("; ")}.`,
        `This machine has ${cores} core${cores === 1 ? "" : "s"}: the chat processes, ${c.primaries * (1 + c.replicasPerPrimary)} Redis nodes and the load generator share ${cores === 1 ? "it" : "them"}, so these rows show what the cluster costs per message and per delivery, not what ${c.processes} machines and ${c.primaries} primaries would do (docs/SCALING.md extrapolates).`,
      ],
    },
  ];
}

export function tables(r: Results): Table[] {
  const out: Table[] = [];
  if (r.throughput?.length) {
    out.push({
      title: "1. Broadcast throughput (closed loop; ours with SQLite on, ours-memory with DB_PATH=:memory:)",
      head: [
        "room / server",
        "deliveries/s",
        "msgs/s",
        "fan-out",
        "srv cores",
        "gen cores",
        "other",
        "srv µs/deliv",
        "limited by",
      ],
      rows: r.throughput.map((t) => [
        `${t.config} / ${t.server}`,
        int(t.median.deliveriesPerSec),
        int(t.median.messagesPerSec),
        fixed(t.median.fanout, 1),
        fixed(t.median.serverCores),
        fixed(t.median.generatorCores),
        fixed(t.median.otherCores),
        fixed(t.median.serverUsPerDelivery, 3),
        limitNote(t.median.limit),
      ]),
      notes: [
        "limited by: which process sat at >= 0.85 of a core; 'generator' or 'both' means the server's figure is a lower bound.",
        "other: cores busy with processes outside the benchmark meanwhile (noise).",
        "ours-memory: our server with DB_PATH=:memory: (SQLite in memory, nothing written to disk); ours / ours-memory is the cost of storage (see the ratios).",
      ],
    });
  }
  if (r.latency?.length) {
    out.push({
      title: `2. Fan-out latency (open loop: ${r.latency[0]?.members} members, ${r.latency[0]?.rate} msg/s)`,
      head: [
        "server",
        "p50",
        "p99",
        "p99.9",
        "max",
        "samples",
        "delivered",
        "srv cores",
        "gen cores",
        "other",
        "limited by",
      ],
      rows: r.latency.map((l) => [
        l.server,
        micros(l.median.p50),
        micros(l.median.p99),
        micros(l.median.p999),
        micros(l.median.max),
        int(l.median.samples),
        fixed(l.median.delivered, 3),
        fixed(l.median.serverCores),
        fixed(l.median.generatorCores),
        fixed(l.median.otherCores),
        limitNote(l.median.limit),
      ]),
      notes: [
        "delivered: deliveries received over those offered; below ~0.99 the server could not keep the rate.",
      ],
    });
  }
  if (r.scale?.length) {
    out.push({
      title: `3. Connection scale (${int(r.scale[0]?.connections ?? 0)} idle clients, rooms of ${r.plan.scale.perRoom})`,
      head: [
        "server",
        "connected",
        "storm",
        "ready p50",
        "ready p99",
        "srv µs/join",
        "RSS before",
        "RSS after",
        "per conn",
        "broadcast",
        "missing",
      ],
      rows: r.scale.map((s) => [
        s.server,
        int(s.median.connected),
        `${int(s.median.stormMs)} ms`,
        `${fixed(s.median.readyP50Ms, 1)} ms`,
        `${fixed(s.median.readyP99Ms, 1)} ms`,
        int(s.median.serverUsPerJoin),
        bytes(s.median.rssBefore),
        bytes(s.median.rssAfter),
        bytes(s.median.bytesPerConnection),
        `${fixed(s.median.broadcastMs, 1)} ms`,
        int(s.median.broadcastMissing),
      ]),
      notes: [
        "per conn: (RSS after the storm - RSS before) / connections. One process may hold fewer than 20,000 files here, so the target count is just under that.",
        "broadcast: one chat in every room, from the first send to the last client's receipt.",
      ],
    });
  }
  if (r.resume?.length) {
    out.push({
      title: `4. Resume (${int(r.resume[0]?.clients ?? 0)} clients reconnect with since, ${r.resume[0]?.missed} missed each)`,
      head: [
        "server",
        "reconnected",
        "storm",
        "ready p50",
        "ready p99",
        "history min..max",
        "truncated",
        "srv µs/resume",
      ],
      rows: r.resume.map((s) => [
        s.server,
        int(s.median.reconnected),
        `${int(s.median.stormMs)} ms`,
        `${fixed(s.median.readyP50Ms, 1)} ms`,
        `${fixed(s.median.readyP99Ms, 1)} ms`,
        `${s.median.historyMin}..${s.median.historyMax}`,
        int(s.median.truncated),
        int(s.median.serverUsPerResume),
      ]),
      notes: ["node-ws keeps its history in memory (lost on restart); ours reads it from SQLite."],
    });
  }
  if (r.http?.length) {
    out.push({
      title: `5. HTTP (autocannon, ${r.plan.http.connections} connections, ${r.plan.http.seconds} s per route)`,
      head: [
        "route / server",
        "req/s",
        "p50",
        "p99",
        "non-2xx",
        "errors",
        "srv cores",
        "autocannon cores",
        "limited by",
      ],
      rows: r.http.map((h) => [
        `${h.route} / ${h.server}`,
        int(h.median.requestsPerSec),
        `${fixed(h.median.p50Ms, 2)} ms`,
        `${fixed(h.median.p99Ms, 2)} ms`,
        int(h.median.non2xx),
        int(h.median.errors),
        fixed(h.median.serverCores),
        fixed(h.median.generatorCores),
        limitNote(h.median.limit),
      ]),
    });
  }
  if (r.cluster) out.push(...clusterTables(r, r.cluster));
  if (r.redisCluster) out.push(...redisClusterTables(r, r.redisCluster));
  if (r.targets.length) {
    out.push({
      title: "Targets (ratios of medians from this run)",
      head: ["target", "want", "got", "met"],
      rows: r.targets.map((t) => [t.target, t.want, t.got, t.met === null ? "n/a" : t.met ? "yes" : "NO"]),
      notes: r.targets.filter((t) => t.note).map((t) => `${t.target}: ${t.note}`),
    });
  }
  if (r.ratios?.length) {
    out.push({
      title: OTHER_RATIOS,
      head: ["ratio", "got"],
      rows: r.ratios.map((x) => [x.ratio, x.got]),
      notes: r.ratios.filter((x) => x.note).map((x) => `${x.ratio}: ${x.note}`),
    });
  }
  return out;
}

const OTHER_RATIOS = "Other ratios from this run (no target)";

// ---- targets and sanity ----

function throughputOf(
  rs: ThroughputResult[],
  config: string,
  server: ServerName,
): ThroughputResult | undefined {
  return rs.find((t) => t.config === config && t.server === server);
}

export function checkTargets(r: Results): TargetCheck[] {
  const out: TargetCheck[] = [];
  const tp = r.throughput ?? [];
  for (const cfg of r.plan.throughput.configs) {
    const ours = throughputOf(tp, cfg.name, "ours");
    if (!ours) continue;
    const against: Array<[ServerName, number]> = [
      ["raw-bun", 0.8],
      ["node-ws", 10],
      ["socket.io", 20],
    ];
    for (const [other, want] of against) {
      const base = throughputOf(tp, cfg.name, other);
      // The light-client and paced runs exist for the CPU-per-delivery targets below.
      if (!base || cfg.client || cfg.pace) continue;
      const got = ratio(ours.median.deliveriesPerSec, base.median.deliveriesPerSec);
      const cpu = ratio(base.median.serverUsPerDelivery, ours.median.serverUsPerDelivery);
      const lowerBound = base.median.limit === "generator" || base.median.limit === "both";
      out.push({
        target: `throughput ${cfg.name}: ours / ${other}`,
        want: `>= ${want}x`,
        got: X(got),
        met: Number.isFinite(got) ? got >= want : null,
        note:
          `server CPU per delivery ${other} / ours = ${X(cpu)}` +
          (lowerBound ? `; ${other} was generator-limited (its true limit is higher)` : ""),
      });
    }
  }
  // Speed issue: server CPU per delivery at least 0.8 of raw Bun's, whoever saturates (or nobody).
  for (const cfg of r.plan.throughput.configs) {
    const ours = throughputOf(tp, cfg.name, "ours");
    const raw = throughputOf(tp, cfg.name, "raw-bun");
    if (!ours || !raw) continue;
    const cpu = ratio(raw.median.serverUsPerDelivery, ours.median.serverUsPerDelivery);
    const how = cfg.pace ? "paced, unsaturated" : cfg.client ? "light client" : "bench generator";
    out.push({
      target: `server CPU per delivery, ${cfg.name}: raw-bun / ours`,
      want: ">= 0.8x",
      got: `${X(cpu)} (${ours.median.serverUsPerDelivery.toFixed(3)} vs ${raw.median.serverUsPerDelivery.toFixed(3)} µs)`,
      met: Number.isFinite(cpu) ? cpu >= 0.8 : null,
      note: `${how}; server cores ours ${ours.median.serverCores.toFixed(2)}, raw-bun ${raw.median.serverCores.toFixed(2)}`,
    });
  }
  const lat = r.latency ?? [];
  const lo = lat.find((l) => l.server === "ours");
  const lr = lat.find((l) => l.server === "raw-bun");
  if (lo && lr) {
    const got = ratio(lo.median.p99, lr.median.p99);
    out.push({
      target: `fan-out p99 (${lo.members} members, ${lo.rate} msg/s): ours / raw-bun`,
      want: "<= 1.2x",
      got: `${X(got)} (${micros(lo.median.p99)} vs ${micros(lr.median.p99)})`,
      met: Number.isFinite(got) ? got <= 1.2 : null,
    });
  }
  const sc = (r.scale ?? []).find((s) => s.server === "ours");
  if (sc) {
    const perConn = sc.median.bytesPerConnection;
    const all = sc.median.connected >= sc.connections;
    out.push({
      target: `${int(sc.connections)} connections held, memory each`,
      want: "all held, < 3,000 B each",
      got: `${int(sc.median.connected)} held, ${int(perConn)} B each`,
      met: all && perConn < 3000,
      note:
        sc.connections < 20_000
          ? `${int(sc.connections)}, not 20,000: the open-file limit here is 20,000 per process, so one server process cannot hold 20,000 sockets plus its own files`
          : undefined,
    });
    const raw = (r.scale ?? []).find((s) => s.server === "raw-bun");
    const us = sc.median.serverUsPerJoin;
    out.push({
      target: `join storm of ${int(sc.connections)}: server CPU per join`,
      want: "< 100 µs",
      got: `${us.toFixed(0)} µs` + (raw ? ` (raw-bun ${raw.median.serverUsPerJoin.toFixed(0)} µs)` : ""),
      met: Number.isFinite(us) ? us < 100 : null,
    });
  }
  return out;
}

/** Storage on / off, and N processes / 1: the ratios the issues ask to quote, with no target to meet. */
export function otherRatios(r: Results): RatioLine[] {
  const out: RatioLine[] = [];
  const tp = r.throughput ?? [];
  for (const cfg of r.plan.throughput.configs) {
    const on = throughputOf(tp, cfg.name, "ours");
    const off = throughputOf(tp, cfg.name, "ours-memory");
    if (!on || !off) continue;
    const value = ratio(on.median.deliveriesPerSec, off.median.deliveriesPerSec);
    const bound = [on, off].filter((t) => t.median.limit === "generator" || t.median.limit === "both");
    out.push({
      ratio: `throughput ${cfg.name}: ours / ours-memory (storage on / off)`,
      value,
      got: `${X(value)} (${int(on.median.deliveriesPerSec)} vs ${int(off.median.deliveriesPerSec)} deliveries/s)`,
      note:
        `server CPU per delivery ours-memory / ours = ${X(ratio(off.median.serverUsPerDelivery, on.median.serverUsPerDelivery))}` +
        (bound.length === 2
          ? "; both were generator-limited (their true figures are higher)"
          : bound.length === 1
            ? `; ${bound[0]?.server} was generator-limited (its true figure is higher)`
            : ""),
    });
  }
  const c = r.cluster;
  if (c && !c.skipped) {
    const by = (v: string) => c.variants.find((x) => x.variant === v);
    const n = by("redis-n");
    const pairs: Array<[string, ReturnType<typeof by>]> = [
      ["1 process + Redis", by("redis-1")],
      ["1 process + SQLite", by("sqlite-1")],
    ];
    for (const [name, one] of pairs) {
      if (!n || !one) continue;
      const t = ratio(n.throughput.median.deliveriesPerSec, one.throughput.median.deliveriesPerSec);
      out.push({
        ratio: `scale-out throughput (${c.config}): ${n.label} / ${name}`,
        value: t,
        got: `${X(t)} (${int(n.throughput.median.deliveriesPerSec)} vs ${int(one.throughput.median.deliveriesPerSec)} deliveries/s)`,
        note: `server CPU per delivery, processes summed: ${fixed(n.throughput.median.serverUsPerDelivery, 3)} vs ${fixed(one.throughput.median.serverUsPerDelivery, 3)} µs`,
      });
      for (const [q, pick] of [
        ["p50", (m: { p50: number }) => m.p50],
        ["p99", (m: { p99: number }) => m.p99],
      ] as const) {
        const a = pick(n.latency.median);
        const b = pick(one.latency.median);
        const v = ratio(a, b);
        out.push({
          ratio: `scale-out fan-out ${q} (${c.members} members, ${c.rate} msg/s): ${n.label} / ${name}`,
          value: v,
          got: `${X(v)} (${micros(a)} vs ${micros(b)})`,
        });
      }
    }
    const redis1 = by("redis-1");
    const sqlite1 = by("sqlite-1");
    if (redis1 && sqlite1) {
      const t = ratio(redis1.throughput.median.deliveriesPerSec, sqlite1.throughput.median.deliveriesPerSec);
      out.push({
        ratio: `scale-out throughput (${c.config}): 1 process + Redis / 1 process + SQLite`,
        value: t,
        got: `${X(t)} (${int(redis1.throughput.median.deliveriesPerSec)} vs ${int(sqlite1.throughput.median.deliveriesPerSec)} deliveries/s)`,
      });
    }
  }
  out.push(...redisClusterRatios(r.redisCluster));
  return out;
}

/** Cluster against one Redis, and MIN_REPLICAS=1 against none, per shape: throughput and fan-out p99. */
function redisClusterRatios(c: RedisClusterResult | undefined): RatioLine[] {
  if (!c || c.skipped) return [];
  const out: RatioLine[] = [];
  const by = (v: string) => c.variants.find((x) => x.variant === v);
  const pairs: Array<[string, RedisClusterVariantResult | undefined, RedisClusterVariantResult | undefined]> =
    [
      ["redis cluster", by("cluster"), by("single")],
      ["MIN_REPLICAS=1 cost", by("cluster-wait"), by("cluster")],
      ["redis cluster, 1 process", by("cluster-1"), by("single")],
    ];
  for (const [what, a, b] of pairs) {
    if (!a || !b) continue;
    for (const sa of a.shapes) {
      const sb = b.shapes.find((s) => s.shape === sa.shape);
      if (!sb) continue;
      const ta = sa.throughput.median;
      const tb = sb.throughput.median;
      const t = ratio(ta.deliveriesPerSec, tb.deliveriesPerSec);
      out.push({
        ratio: `${what}, throughput ${sa.shape}: ${a.label} / ${b.label}`,
        value: t,
        got: `${X(t)} (${int(ta.deliveriesPerSec)} vs ${int(tb.deliveriesPerSec)} deliveries/s)`,
        note:
          `server CPU per delivery ${fixed(ta.serverUsPerDelivery, 3)} vs ${fixed(tb.serverUsPerDelivery, 3)} µs, ` +
          `Redis CPU per message ${fixed(ta.redisUsPerMessage, 1)} vs ${fixed(tb.redisUsPerMessage, 1)} µs (primaries ${fixed(ta.redisPrimaryUsPerMessage, 1)} vs ${fixed(tb.redisPrimaryUsPerMessage, 1)} µs); limited by ${ta.limit} vs ${tb.limit}`,
      });
      const pa = sa.fanout.median.p99;
      const pb = sb.fanout.median.p99;
      const p = ratio(pa, pb);
      out.push({
        ratio: `${what}, fan-out p99 ${sa.shape} (${int(sa.latency.members)} members, ${int(sa.latency.rate)} msg/s): ${a.label} / ${b.label}`,
        value: p,
        got: `${X(p)} (${micros(pa)} vs ${micros(pb)})`,
      });
    }
  }
  return out;
}

export function findProblems(r: Results): string[] {
  const out: string[] = [];
  for (const t of r.throughput ?? []) {
    if (!(t.median.deliveriesPerSec > 0)) out.push(`throughput ${t.config} / ${t.server}: no deliveries`);
    if (t.median.errors > 0)
      out.push(`throughput ${t.config} / ${t.server}: ${t.median.errors} error frames`);
    if (t.median.unexpectedCloses > 0)
      out.push(
        `throughput ${t.config} / ${t.server}: ${t.median.unexpectedCloses} connections closed by the server`,
      );
  }
  for (const l of r.latency ?? []) {
    if (!(l.median.samples > 0)) out.push(`latency / ${l.server}: no samples`);
  }
  for (const s of r.scale ?? []) {
    if (s.median.connected < s.connections) {
      out.push(
        `scale / ${s.server}: ${int(s.median.connected)} of ${int(s.connections)} connected (${s.median.firstError ?? "?"})`,
      );
    }
    if (s.median.broadcastMissing > 0)
      out.push(`scale / ${s.server}: broadcast missed ${s.median.broadcastMissing} clients`);
  }
  for (const s of r.resume ?? []) {
    if (s.median.reconnected < s.clients)
      out.push(`resume / ${s.server}: ${s.median.reconnected} of ${s.clients} reconnected`);
    if (s.median.historyMin !== s.missed || s.median.historyMax !== s.missed) {
      out.push(
        `resume / ${s.server}: welcome history ${s.median.historyMin}..${s.median.historyMax}, expected ${s.missed}`,
      );
    }
  }
  for (const h of r.http ?? []) {
    if (!(h.median.requestsPerSec > 0)) out.push(`http ${h.route} / ${h.server}: no requests`);
    if (h.median.non2xx > 0 || h.median.errors > 0)
      out.push(`http ${h.route} / ${h.server}: ${h.median.non2xx} non-2xx, ${h.median.errors} errors`);
  }
  for (const v of r.cluster?.variants ?? []) {
    const tp = v.throughput.median;
    const lat = v.latency.median;
    if (!(tp.deliveriesPerSec > 0)) out.push(`cluster throughput / ${v.label}: no deliveries`);
    if (!(lat.samples > 0)) out.push(`cluster latency / ${v.label}: no samples`);
    for (const [what, m] of [
      ["throughput", tp],
      ["latency", lat],
    ] as const) {
      const note = checkedNote(m);
      if (note !== "ok")
        out.push(
          `cluster ${what} / ${v.label}: ${note}${m.firstError ? ` (first error: ${m.firstError})` : ""}`,
        );
    }
  }
  for (const v of r.redisCluster?.variants ?? []) {
    for (const s of v.shapes) {
      const tp = s.throughput.median;
      const lat = s.fanout.median;
      if (!(tp.deliveriesPerSec > 0))
        out.push(`redis-cluster throughput ${s.shape} / ${v.label}: no deliveries`);
      if (!(lat.samples > 0)) out.push(`redis-cluster latency ${s.shape} / ${v.label}: no samples`);
      for (const [what, m] of [
        ["throughput", tp],
        ["latency", lat],
      ] as const) {
        const note = checkedNote(m);
        if (note !== "ok")
          out.push(
            `redis-cluster ${what} ${s.shape} / ${v.label}: ${note}${m.firstError ? ` (first error: ${m.firstError})` : ""}`,
          );
      }
    }
  }
  return out;
}

export function markdown(r: Results): string {
  const m = r.machine;
  const parts = [
    "# Benchmark results",
    "",
    `The last full run of \`bench/run.ts\` (${r.mode} mode), written by the suite itself. Rerun with:`,
    "",
    "```",
    r.command,
    "```",
    "",
    `- Started ${r.startedAt}, took ${Math.round(r.durationSeconds)} s.`,
    `- Machine: ${m.nproc} cores (${m.cpuModel}), ${m.memoryGiB.toFixed(1)} GiB memory, Linux ${m.kernel}, open-file limit ${m.openFileLimit}; Bun ${m.bun}, Node ${m.node}; load average at start ${m.loadAverageAtStart.map((x) => x.toFixed(2)).join(" / ")}.`,
    `- ${r.plan.reps} repetitions per scenario, the servers' order rotating each time; figures are medians.`,
    "- Every server under test runs as its own process on 127.0.0.1; ours is `bun server.ts` with a fresh SQLite file (storage on) and its rate limits off; ours-memory is the same with `DB_PATH=:memory:` (storage off). The load generator is `bench/generator/` (its own WebSocket client on Bun.connect), in separate processes.",
    `- Scale-out (6): ours as ${r.plan.cluster.processes} processes with \`REDIS_URL\` pointing at a private redis-server${r.cluster?.redisVersion ? ` ${r.cluster.redisVersion}` : ""} on 127.0.0.1 (\`--appendonly yes --appendfsync everysec\`, emptied before each run), clients alternating between the processes in one room; against 1 process on the same Redis and 1 process on SQLite. ${r.plan.cluster.reps} repetitions; every client checks seq order, and the totals that nothing is missing.`,
    ...(r.redisCluster && !r.redisCluster.skipped
      ? [
          `- Redis Cluster (7): our server on a private Redis Cluster of ${r.plan.redisCluster.primaries} primaries with ${r.plan.redisCluster.replicasPerPrimary} replica each (\`REDIS_CLUSTER\`, redis-server ${r.redisCluster.redisVersion ?? "?"} started by test/redis/support/redis-cluster.ts) and on one private redis-server (\`REDIS_URL\`); every node \`appendonly yes\`, \`appendfsync everysec\`, emptied before each deployment. Deployments: ${r.redisCluster.variants.map((v) => v.label).join("; ")}. ${r.plan.redisCluster.reps} repetitions; every client checks seq order, and the totals that nothing is missing.`,
        ]
      : []),
    `- A throughput or latency measurement taken while more than ${NOISE_CORES} cores were busy outside the benchmark ("other") is repeated, up to ${r.plan.attempts} attempts, and the quietest kept.`,
    '- "limited by": the process that sat at >= 0.85 of a core. When the generator is saturated ("generator", "both") the server could have done more, so ratios against that server flatter ours; the server-CPU-per-delivery ratio in the notes does not depend on who saturated.',
    "",
    "## Targets",
    "",
  ];
  const all = tables(r);
  const targets = all.find((t) => t.title.startsWith("Targets"));
  if (targets) parts.push(renderMarkdown({ ...targets, title: "Ratios from this run" }), "");
  const others = all.find((t) => t.title === OTHER_RATIOS);
  if (others) parts.push(renderMarkdown(others), "");
  if (r.problems.length)
    parts.push("## Problems seen in this run", "", ...r.problems.map((p) => `- ${p}`), "");
  parts.push("## Scenarios", "");
  for (const t of all) if (t !== targets && t !== others) parts.push(renderMarkdown(t), "");
  return `${parts.join("\n").trimEnd()}\n`;
}
