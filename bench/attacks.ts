/**
 * Three denial-of-service attacks against one checkout of the server, each on a fresh process,
 * measuring the server's memory and CPU and a bystander's ack latency while it lasts.
 *
 *   bun bench/attacks.ts --root DIR [--only slow-readers,history-storm,churn] [--out FILE]
 *                        [--fill 400] [--seconds 10] [--quiet-wait 30]
 *   bun bench/attacks.ts --compare A.json B.json      side-by-side tables of two runs
 *
 * Each attack: start `bun DIR/server.ts` (cwd DIR; PORT=0 HOST=127.0.0.1 DB_PATH=<temp file>
 * LOG_LEVEL=warn and nothing else from the environment, so every limit is the server's default),
 * fill room `big` when the attack needs it, start the bystander (bench/attacks/bystander.ts, its own
 * process: one chat with an id every 100 ms in room `calm`, and the server's VmRSS every 100 ms),
 * wait 1 s (baseline), attack for `--seconds`, wait 5 s, read everything, stop the server. Before
 * each attack it waits (up to `--quiet-wait` seconds) for the machine to be nearly idle, and it
 * reports how busy the machine was with other work during the attack: latencies are only
 * comparable between runs under similar load.
 *
 * 1. slow-readers: 50 connections in `big` that upgrade and then never read (node:net, paused),
 *    each sending `{"type":"history","limit":200}` 5 times a second.
 * 2. history-storm: 40 reading connections in `big`, each sending the same request 5 times a second.
 * 3. churn: 200 concurrent loops of connect, wait for the welcome, close, for as long as it lasts;
 *    it counts TCP connections, upgrades (101) and welcomes (each one a resumable session).
 *
 * Everything is from 127.0.0.1 over loopback, bounded in count and time.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import type { BystanderResult } from "./attacks/bystander";
import { connectPaused, type PausedSocket, RawWs, textFrame } from "./attacks/raw-ws";

const BYSTANDER = join(import.meta.dir, "attacks", "bystander.ts");
const BUN = process.execPath;
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));
const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Processes: every child is killed however this process ends.

const children = new Set<Subprocess>();
function track<T extends Subprocess>(proc: T): T {
  children.add(proc);
  proc.exited.finally(() => children.delete(proc));
  return proc;
}
function killChildren(): void {
  for (const proc of children) {
    try {
      proc.kill("SIGKILL");
    } catch {
      // gone already
    }
  }
}
process.on("exit", killChildren);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    killChildren();
    process.exit(130);
  });
}

const CLK_TCK = Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim()) || 100;

/** User + system CPU seconds of a process (all threads); NaN once it is gone. */
function cpuSeconds(pid: number | "self"): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
}

/** VmRSS and VmHWM in bytes. */
function memory(pid: number): { rss: number; hwm: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = (name: string) =>
      Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? Number.NaN);
    return { rss: kib("VmRSS") * 1024, hwm: kib("VmHWM") * 1024 };
  } catch {
    return { rss: Number.NaN, hwm: Number.NaN };
  }
}

/** Busy jiffies of the whole machine. */
function machineBusy(): number {
  const v = (readFileSync("/proc/stat", "utf8").split("\n", 1)[0] as string).trim().split(/\s+/).slice(1, 9);
  const n = v.map(Number);
  return n.reduce((a, b) => a + b, 0) - (n[3] ?? 0) - (n[4] ?? 0);
}

interface Server {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  pid: number;
  port: number;
  dbDir: string;
  stderrTail(): string;
  /** How it ended, when it ended before we stopped it. */
  exited(): string | null;
}

async function* chunks(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    yield value;
  }
}

async function startServer(root: string): Promise<Server> {
  const dbDir = mkdtempSync(join(tmpdir(), "attacks-db-"));
  const proc = track(
    Bun.spawn([BUN, join(root, "server.ts")], {
      cwd: root,
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: process.env.HOME ?? tmpdir(),
        TMPDIR: tmpdir(),
        PORT: "0",
        HOST: "127.0.0.1",
        DB_PATH: join(dbDir, "chat.db"),
        LOG_LEVEL: "warn",
      },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    }),
  );
  let stderr = "";
  let ended: string | null = null;
  proc.exited.then(() => {
    ended = `exited with ${proc.exitCode ?? proc.signalCode}`;
  });
  (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of chunks(proc.stderr)) stderr = (stderr + decoder.decode(chunk)).slice(-4000);
  })();
  const port = await new Promise<number>((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 20 s: ${stderr}`)), 20_000);
    (async () => {
      const decoder = new TextDecoder();
      let out = "";
      let found = false;
      for await (const chunk of chunks(proc.stdout)) {
        if (found) continue; // keep draining
        out = (out + decoder.decode(chunk)).slice(-4000);
        const m = /listening on http:\/\/[^\s]+:(\d+)/.exec(out);
        if (m) {
          found = true;
          clearTimeout(timer);
          resolvePort(Number(m[1]));
        }
      }
      if (!found) {
        clearTimeout(timer);
        reject(new Error(`server exited before listening: ${stderr || out}`));
      }
    })();
  });
  return { proc, pid: proc.pid, port, dbDir, stderrTail: () => stderr, exited: () => ended };
}

async function stopServer(server: Server): Promise<void> {
  if (server.proc.exitCode === null && server.proc.signalCode === null) {
    server.proc.kill("SIGTERM");
    const timer = setTimeout(() => server.proc.kill("SIGKILL"), 3000);
    await server.proc.exited;
    clearTimeout(timer);
  }
  rmSync(server.dbDir, { recursive: true, force: true });
}

/** Counters of /metrics by name and label, e.g. `chat_closes_total{code="1008"}`. */
async function metrics(port: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
    for (const line of (await res.text()).split("\n")) {
      const m = /^(chat_[a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
      if (m) out.set(m[1] as string, Number(m[2]));
    }
  } catch {
    // the server is gone or too busy: the deltas are then left out
  }
  return out;
}

function metricDeltas(before: Map<string, number>, after: Map<string, number>) {
  const group = (name: string) => {
    const d: Record<string, number> = {};
    for (const [key, value] of after) {
      const m = new RegExp(`^${name}\\{code="([^"]*)"\\}$`).exec(key);
      if (!m) continue;
      const delta = value - (before.get(key) ?? 0);
      if (delta > 0) d[m[1] as string] = delta;
    }
    return d;
  };
  const plain = (name: string) =>
    after.has(name) ? (after.get(name) as number) - (before.get(name) ?? 0) : Number.NaN;
  return {
    available: after.size > 0,
    closes: group("chat_closes_total"),
    errors: group("chat_errors_total"),
    refusals: group("chat_refusals_total"),
    messagesIn: plain("chat_messages_in_total"),
    messagesOut: plain("chat_messages_out_total"),
  };
}

// ---------------------------------------------------------------------------------------------
// The bystander

interface Bystander {
  pid: number;
  /** Pings sent before `before` that still wait for their ack. */
  pending(before: number): Promise<number>;
  stop(): Promise<BystanderResult>;
}

async function startBystander(port: number, serverPid: number): Promise<Bystander> {
  let onReady!: () => void;
  let onResult!: (r: BystanderResult) => void;
  let onPending: ((count: number) => void) | undefined;
  const ready = new Promise<void>((r) => {
    onReady = r;
  });
  const result = new Promise<BystanderResult>((r) => {
    onResult = r;
  });
  const proc = track(
    Bun.spawn([BUN, BYSTANDER, String(port), String(serverPid)], {
      stdin: "ignore",
      stdout: "inherit",
      stderr: "inherit",
      serialization: "json",
      ipc(message: { type: string }) {
        if (message.type === "ready") onReady();
        else if (message.type === "result") onResult(message as BystanderResult);
        else if (message.type === "pending") onPending?.((message as unknown as { count: number }).count);
      },
    }),
  );
  const failed = proc.exited.then((code) => {
    throw new Error(`bystander exited with ${code}`);
  });
  failed.catch(() => {});
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("bystander: no welcome in 10 s")), 10_000);
  });
  try {
    await Promise.race([ready, failed, timeout]);
  } finally {
    clearTimeout(timer);
  }
  return {
    pid: proc.pid,
    pending(before) {
      return new Promise<number>((answer) => {
        onPending = answer;
        proc.send({ type: "pending", before });
      });
    },
    async stop() {
      proc.send({ type: "stop" });
      const r = await Promise.race([result, failed, sleep(10_000).then(() => undefined)]);
      if (!r) throw new Error("bystander did not answer");
      await proc.exited;
      return r;
    },
  };
}

interface Latency {
  sent: number;
  acked: number;
  /** Sent in the window, no ack by the time the bystander stopped (see `caughtUpSeconds`). */
  missing: number;
  /** Acks that came later than 5 s after the attack (counted in the percentiles too). */
  late: number;
  /** Error replies instead of an ack, by code (counted in `missing` too). */
  failed: Record<string, number>;
  p50: number;
  p99: number;
  max: number;
}

function latency(
  r: BystanderResult,
  from: number,
  to: number,
  lateAfter = Number.POSITIVE_INFINITY,
): Latency {
  const lat: number[] = [];
  const failed: Record<string, number> = {};
  let sent = 0;
  let missing = 0;
  let late = 0;
  r.sent.forEach((t, i) => {
    if (t < from || t >= to) return;
    sent++;
    const a = r.acked[i] as number;
    if (a < 0) {
      missing++;
      const code = r.failed[i];
      if (code) failed[code] = (failed[code] ?? 0) + 1;
    } else {
      lat.push(a - t);
      if (a > lateAfter) late++;
    }
  });
  lat.sort((a, b) => a - b);
  const q = (p: number) =>
    lat.length ? (lat[Math.min(lat.length - 1, Math.ceil(p * lat.length) - 1)] as number) : Number.NaN;
  return {
    sent,
    acked: lat.length,
    missing,
    late,
    failed,
    p50: q(0.5),
    p99: q(0.99),
    max: lat.at(-1) ?? Number.NaN,
  };
}

// ---------------------------------------------------------------------------------------------
// Filling room `big`

const BIG_TEXT = "🦊".repeat(4000); // 4000 code points, 16,000 bytes of UTF-8
const FILLERS = 10;

interface Fill {
  messages: number;
  bytesEach: number;
  seconds: number;
  /** Chats the server refused with rate_limited and that were sent again. */
  resent: number;
}

/** Posts `count` chats of BIG_TEXT into `big` over FILLERS connections, each within RATE_LIMIT. */
async function fill(port: number, count: number): Promise<Fill> {
  const t0 = now();
  let resent = 0;
  const one = (f: number, ids: string[]) =>
    new Promise<void>((done, fail) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?room=big&nick=filler${f}`);
      const queue = [...ids];
      const waiting = new Set<string>();
      let pacer: ReturnType<typeof setInterval> | undefined;
      const timer = setTimeout(
        () => fail(new Error(`filler ${f}: ${waiting.size + queue.length} left`)),
        90_000,
      );
      const send = () => {
        const id = queue.shift();
        if (id === undefined) return;
        waiting.add(id);
        ws.send(JSON.stringify({ type: "chat", text: BIG_TEXT, id }));
      };
      ws.onmessage = (e) => {
        const text = e.data as string;
        if (text.startsWith('{"type":"welcome"')) {
          for (let i = 0; i < 20; i++) send(); // RATE_BURST
          pacer = setInterval(send, 110); // under RATE_LIMIT (10/s)
        } else if (text.startsWith('{"type":"ack"')) {
          waiting.delete((JSON.parse(text) as { id: string }).id);
          if (waiting.size === 0 && queue.length === 0) {
            clearInterval(pacer);
            clearTimeout(timer);
            ws.close();
            done();
          }
        } else if (text.startsWith('{"type":"error"')) {
          const err = JSON.parse(text) as { code: string; id?: string };
          if (err.code === "rate_limited" && err.id && waiting.delete(err.id)) {
            resent++;
            queue.push(err.id);
          } else fail(new Error(`filler ${f}: ${text.slice(0, 200)}`));
        }
      };
      ws.onclose = (e) => {
        if (waiting.size + queue.length > 0) fail(new Error(`filler ${f} closed ${e.code}`));
      };
    });
  const per = Math.ceil(count / FILLERS);
  await Promise.all(
    range(FILLERS).map((f) =>
      one(
        f,
        range(Math.max(0, Math.min(per, count - f * per))).map((i) => `f${f}-${i}`),
      ),
    ),
  );
  return { messages: count, bytesEach: Buffer.byteLength(BIG_TEXT), seconds: (now() - t0) / 1000, resent };
}

// ---------------------------------------------------------------------------------------------
// The attacks

const HISTORY = textFrame('{"type":"history","limit":200}');
const PER_SECOND = 5; // CONTROL_RATE_LIMIT

/**
 * Calls `each(i)` for i in [0, n) `perSecond` times a second each, spread evenly over 20 ms ticks,
 * until stopped.
 */
function paced(n: number, perSecond: number, each: (i: number) => void): () => void {
  const slots = Math.max(1, Math.round(1000 / perSecond / 20));
  let tick = 0;
  const timer = setInterval(() => {
    const slot = tick++ % slots;
    for (let i = slot; i < n; i += slots) each(i);
  }, 20);
  return () => clearInterval(timer);
}

type Summary = Array<[string, string]>;
interface AttackOutcome {
  details: Record<string, unknown>;
  summary: Summary;
}

async function slowReaders(port: number, ms: number): Promise<AttackOutcome> {
  const n = 50;
  const t0 = now();
  const results = await Promise.all(range(n).map(() => connectPaused(port, "/ws?room=big", 5000)));
  const socks = results.filter((r): r is PausedSocket => "socket" in r);
  const refused: Record<string, number> = {};
  for (const r of results) if ("refused" in r) refused[r.refused] = (refused[r.refused] ?? 0) + 1;
  let requests = 0;
  let blocked = 0;
  const stopPacing = paced(socks.length, PER_SECOND, (i) => {
    const s = socks[i] as PausedSocket;
    if (s.gone) return;
    requests++;
    if (!s.socket.write(HISTORY)) blocked++;
  });
  await sleep(ms - (now() - t0));
  stopPacing();
  const gone = socks.filter((s) => s.gone).length;
  for (const s of socks) s.socket.destroy();
  const details = {
    connections: n,
    upgraded: socks.length,
    refused,
    historyRequests: requests,
    requestedMiB: (requests * 200 * 16_100) / MiB,
    writesBuffered: blocked,
    /** Sockets that saw an error or close: a paused socket may not notice, see the server's closes. */
    goneBeforeEnd: gone,
  };
  return {
    details,
    summary: [
      [
        "connections upgraded / refused",
        `${socks.length} / ${n - socks.length}${socks.length < n ? ` (${fmtCounts(refused)})` : ""}`,
      ],
      ["history requests sent", `${requests} (~${Math.round(details.requestedMiB)} MiB asked for)`],
    ],
  };
}

async function historyStorm(port: number, ms: number): Promise<AttackOutcome> {
  const n = 40;
  const t0 = now();
  let requests = 0;
  let answers = 0;
  let answerBytes = 0;
  const errors: Record<string, number> = {};
  const ended: Record<string, number> = {};
  let stopping = false;
  let open = 0;
  let closedCount = 0;
  let allClosed!: () => void;
  const closedAll = new Promise<void>((r) => {
    allClosed = r;
  });
  const conns = range(n).map((i) =>
    RawWs.connect(
      port,
      "/ws?room=big",
      {
        open() {
          open++;
        },
        message(_ws, head, length) {
          if (head.startsWith('{"type":"history"')) {
            answers++;
            answerBytes += length;
          } else if (head.startsWith('{"type":"error"')) {
            const code = /"code":"([a-z_]+)"/.exec(head)?.[1] ?? "?";
            errors[code] = (errors[code] ?? 0) + 1;
          }
        },
        closed(_ws, reason) {
          if (!stopping) ended[reason] = (ended[reason] ?? 0) + 1;
          if (++closedCount === n) allClosed();
        },
      },
      i,
    ),
  );
  const stopPacing = paced(n, PER_SECOND, (i) => {
    const c = conns[i] as RawWs;
    if (!c.isOpen) return;
    requests++;
    c.send(HISTORY);
  });
  await sleep(ms - (now() - t0));
  stopPacing();
  stopping = true;
  const received = conns.reduce((a, c) => a + c.bytesIn, 0);
  for (const c of conns) c.close();
  await Promise.race([closedAll, sleep(3000)]);
  for (const c of conns) c.terminate();
  const details = {
    connections: n,
    upgraded: open,
    historyRequests: requests,
    historyAnswers: answers,
    historyAnswerMiB: answerBytes / MiB,
    receivedMiB: received / MiB,
    errors,
    endedEarly: ended,
  };
  return {
    details,
    summary: [
      ["connections upgraded", `${open} / ${n}`],
      ["history requests sent / answered", `${requests} / ${answers}`],
      ["history MiB received", (answerBytes / MiB).toFixed(0)],
      ["error replies", fmtCounts(errors) || "none"],
      ["connections ended early", fmtCounts(ended) || "none"],
    ],
  };
}

async function churn(port: number, ms: number): Promise<AttackOutcome> {
  const loops = 200;
  const t0 = now();
  const deadline = t0 + ms;
  let attempts = 0;
  let upgraded = 0;
  let welcomes = 0;
  const refused: Record<string, number> = {};
  const failures: Record<string, number> = {};
  const loop = () =>
    new Promise<void>((done) => {
      const next = () => {
        if (now() >= deadline) done();
        else attempt();
      };
      const attempt = () => {
        attempts++;
        let welcomed = false;
        const ws = RawWs.connect(port, "/ws?room=churn", {
          open() {
            upgraded++;
          },
          message(w, head) {
            if (welcomed) return;
            welcomed = true;
            if (head.startsWith('{"type":"welcome"')) welcomes++;
            w.close();
          },
          closed(_w, reason, status) {
            clearTimeout(timer);
            if (status !== undefined) refused[status] = (refused[status] ?? 0) + 1;
            else if (!welcomed) {
              const key = reason.replace(/\d+/g, "N");
              failures[key] = (failures[key] ?? 0) + 1;
              setTimeout(next, 10); // do not spin on a failing connect
              return;
            }
            next();
          },
        });
        const timer = setTimeout(() => ws.terminate("timeout (5 s)"), 5000);
      };
      next();
    });
  await Promise.all(range(loops).map(loop));
  const seconds = (now() - t0) / 1000;
  const details = {
    loops,
    attempts,
    connections: upgraded,
    sessions: welcomes,
    connectionsPerSecond: upgraded / seconds,
    refused,
    failures,
    seconds,
  };
  return {
    details,
    summary: [
      ["connect attempts", String(attempts)],
      ["connections made (101)", `${upgraded} (${(upgraded / seconds).toFixed(0)}/s)`],
      ["sessions created (welcomes)", String(welcomes)],
      ["refused by HTTP status", fmtCounts(refused) || "none"],
      ["failed otherwise", fmtCounts(failures) || "none"],
    ],
  };
}

interface AttackDef {
  name: string;
  title: string;
  needsFill: boolean;
  run(port: number, ms: number): Promise<AttackOutcome>;
}

const ATTACKS: AttackDef[] = [
  { name: "slow-readers", title: "slow readers + history", needsFill: true, run: slowReaders },
  { name: "history-storm", title: "history storm", needsFill: true, run: historyStorm },
  { name: "churn", title: "connection churn", needsFill: false, run: churn },
];

// ---------------------------------------------------------------------------------------------
// One measurement

interface Measured {
  name: string;
  title: string;
  error?: string;
  fill?: Fill;
  attackSeconds?: number;
  attack?: Record<string, unknown>;
  server?: {
    rssBeforeMiB: number;
    rssPeakMiB: number;
    /** Seconds after the attack's start. */
    rssPeakAtSeconds: number;
    rssAfter5sMiB: number;
    /**
     * Seconds after the attack when every ping sent during it had its answer (at least 5);
     * null when that took more than 5 s + CATCH_UP_MS.
     */
    caughtUpSeconds: number | null;
    /** Peak from the attack's start until then (or until the bystander stopped waiting). */
    rssPeakUntilCaughtUpMiB: number;
    rssPeakUntilCaughtUpAtSeconds: number;
    rssEndMiB: number;
    /** The kernel's peak RSS over the server's whole life (filling included). */
    vmHwmMiB: number;
    cpuSeconds: number;
    cores: number;
    exited: string | null;
    stderrTail?: string;
  };
  generator?: {
    mainCores: number;
    bystanderCores: number;
    machineBusyCores: number;
    /** Cores busy with anything but the server, this process and the bystander (other work on the machine). */
    otherCores: number;
    quietBefore: Quiet;
  };
  bystander?: { baseline: Latency; during: Latency; closed: string | null };
  metrics?: ReturnType<typeof metricDeltas>;
  summary?: Summary;
}

interface Quiet {
  waitedSeconds: number;
  /** Cores busy on the machine in the last second before the attack's server started. */
  busyCores: number;
}

/** Waits (up to `maxSeconds`) for a second in which the machine is almost idle: other work skews latency. */
async function waitForQuiet(maxSeconds: number): Promise<Quiet> {
  const t0 = now();
  for (;;) {
    const b0 = machineBusy();
    const s0 = now();
    await sleep(1000);
    const busyCores = (machineBusy() - b0) / CLK_TCK / ((now() - s0) / 1000);
    const waitedSeconds = (now() - t0) / 1000;
    if (busyCores <= QUIET_CORES || waitedSeconds >= maxSeconds) return { waitedSeconds, busyCores };
  }
}
const QUIET_CORES = 0.3;
const CATCH_UP_MS = 15_000;

async function measure(
  root: string,
  def: AttackDef,
  fillCount: number,
  ms: number,
  quietSeconds: number,
): Promise<Measured> {
  const out: Measured = { name: def.name, title: def.title };
  const quietBefore = await waitForQuiet(quietSeconds);
  const server = await startServer(root);
  try {
    if (def.needsFill) out.fill = await fill(server.port, fillCount);
    const bystander = await startBystander(server.port, server.pid);
    await sleep(1000);
    const m0 = await metrics(server.port);
    const rssBefore = memory(server.pid).rss;
    const tStart = now();
    const cpu0 = cpuSeconds(server.pid);
    const self0 = cpuSeconds("self");
    const by0 = cpuSeconds(bystander.pid);
    const busy0 = machineBusy();
    const outcome = await def.run(server.port, ms);
    const tEnd = now();
    const cpu1 = cpuSeconds(server.pid);
    const self1 = cpuSeconds("self");
    const by1 = cpuSeconds(bystander.pid);
    const busy1 = machineBusy();
    const wall = (tEnd - tStart) / 1000;
    await sleep(5000 - (now() - tEnd));
    const t5 = now();
    const rssAfter = memory(server.pid).rss;
    // A server may still be working off the attack: wait (at most CATCH_UP_MS more) until every
    // ping the bystander sent during the attack has had its answer, watching memory meanwhile.
    let caughtUpAt = Number.NaN;
    while (now() - t5 < CATCH_UP_MS && !server.exited()) {
      const pending = await Promise.race([bystander.pending(tEnd), sleep(2000).then(() => -1)]);
      if (pending === 0) {
        caughtUpAt = now();
        break;
      }
      await sleep(250);
    }
    const rssEnd = memory(server.pid).rss;
    const hwm = memory(server.pid).hwm;
    const by = await bystander.stop();
    const m1 = await metrics(server.port);
    const peakIn = (from: number, to: number) => {
      let peak = rssBefore;
      let at = 0;
      for (let i = 0; i < by.samples.length; i += 2) {
        const t = by.samples[i] as number;
        const kib = by.samples[i + 1] as number;
        if (t >= from && t <= to && kib >= 0 && kib * 1024 > peak) {
          peak = kib * 1024;
          at = (t - tStart) / 1000;
        }
      }
      return { peak, at };
    };
    const { peak, at: peakAt } = peakIn(tStart, t5);
    const overall = peakIn(tStart, Number.POSITIVE_INFINITY);
    out.attackSeconds = wall;
    out.attack = outcome.details;
    out.server = {
      rssBeforeMiB: rssBefore / MiB,
      rssPeakMiB: peak / MiB,
      rssPeakAtSeconds: peakAt,
      rssAfter5sMiB: rssAfter / MiB,
      caughtUpSeconds: Number.isNaN(caughtUpAt) ? null : (caughtUpAt - tEnd) / 1000,
      rssPeakUntilCaughtUpMiB: overall.peak / MiB,
      rssPeakUntilCaughtUpAtSeconds: overall.at,
      rssEndMiB: rssEnd / MiB,
      vmHwmMiB: hwm / MiB,
      cpuSeconds: cpu1 - cpu0,
      cores: (cpu1 - cpu0) / wall,
      exited: server.exited(),
    };
    if (server.exited()) out.server.stderrTail = server.stderrTail();
    const busyCores = (busy1 - busy0) / CLK_TCK / wall;
    out.generator = {
      mainCores: (self1 - self0) / wall,
      bystanderCores: (by1 - by0) / wall,
      machineBusyCores: busyCores,
      otherCores: Math.max(0, busyCores - (cpu1 - cpu0 + self1 - self0 + by1 - by0) / wall),
      quietBefore,
    };
    out.bystander = {
      baseline: latency(by, tStart - 1000, tStart),
      during: latency(by, tStart, tEnd, t5),
      closed: by.closed,
    };
    out.metrics = metricDeltas(m0, m1);
    out.summary = outcome.summary;
  } catch (err) {
    out.error = err instanceof Error ? err.message : String(err);
    out.server = { ...(out.server as NonNullable<Measured["server"]>), exited: server.exited() };
    if (server.exited()) out.server.stderrTail = server.stderrTail();
  } finally {
    await stopServer(server);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reporting

function fmtCounts(counts: Record<string, number>): string {
  return Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k}:${v}`)
    .join(" ");
}
const ms1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "-");
const mib = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : "-");

function rows(m: Measured): Summary {
  if (m.error && !m.bystander) return [["error", m.error]];
  const s = m.server as NonNullable<Measured["server"]>;
  const b = m.bystander as NonNullable<Measured["bystander"]>;
  const d = b.during;
  const r: Summary = [];
  if (m.fill)
    r.push([
      "filler (room big)",
      `${m.fill.messages} x ${(m.fill.bytesEach / 1000).toFixed(0)} kB in ${m.fill.seconds.toFixed(2)} s`,
    ]);
  r.push(["attack duration (s)", (m.attackSeconds ?? Number.NaN).toFixed(1)]);
  r.push(...(m.summary ?? []));
  r.push(
    ["server RSS before (MiB)", mib(s.rssBeforeMiB)],
    ["server RSS peak (MiB)", `${mib(s.rssPeakMiB)} (at +${s.rssPeakAtSeconds.toFixed(1)} s)`],
    ["server RSS 5 s after (MiB)", mib(s.rssAfter5sMiB)],
    [
      "server caught up with the bystander",
      s.caughtUpSeconds === null
        ? `not within ${(5 + CATCH_UP_MS / 1000).toFixed(0)} s (RSS then ${mib(s.rssEndMiB)} MiB, peak ${mib(s.rssPeakUntilCaughtUpMiB)})`
        : s.caughtUpSeconds > 5.5
          ? `after ${s.caughtUpSeconds.toFixed(1)} s (RSS then ${mib(s.rssEndMiB)} MiB, peak ${mib(s.rssPeakUntilCaughtUpMiB)})`
          : "within 5 s",
    ],
    ["server CPU during attack", `${s.cpuSeconds.toFixed(1)} s (${s.cores.toFixed(2)} cores)`],
    ["bystander ack p50 / p99 / max (ms)", `${ms1(d.p50)} / ${ms1(d.p99)} / ${ms1(d.max)}`],
    [
      "bystander acks missing",
      `${d.missing} of ${d.sent}${Object.keys(d.failed).length ? ` (${fmtCounts(d.failed)})` : ""}${d.late ? `; ${d.late} came after more than 5 s` : ""}`,
    ],
    ["bystander before attack p50 / max (ms)", `${ms1(b.baseline.p50)} / ${ms1(b.baseline.max)}`],
  );
  if (b.closed) r.push(["bystander connection", b.closed]);
  if (m.metrics?.available) {
    r.push(
      ["server closes by code", fmtCounts(m.metrics.closes) || "none"],
      ["server error replies by code", fmtCounts(m.metrics.errors) || "none"],
      ["server refusals by code", fmtCounts(m.metrics.refusals) || "none"],
    );
  } else r.push(["server /metrics", "unavailable after the attack"]);
  const g = m.generator;
  if (g) {
    r.push([
      "generator / bystander CPU (cores)",
      `${g.mainCores.toFixed(2)} / ${g.bystanderCores.toFixed(2)}`,
    ]);
    r.push([
      "other load on the machine (cores)",
      `${g.otherCores.toFixed(2)} (${g.quietBefore.busyCores.toFixed(2)} before, after waiting ${g.quietBefore.waitedSeconds.toFixed(0)} s)`,
    ]);
  }
  if (s.exited) r.push(["server", s.exited]);
  if (m.error) r.push(["error", m.error]);
  return r;
}

function table(headers: string[], body: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? "").length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(" | ")} |`;
  return [line(headers), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...body.map(line)].join("\n");
}

interface RunFile {
  root: string;
  commit: string;
  modifiedFiles: number;
  startedAt: string;
  totalSeconds: number;
  bun: string;
  cores: number;
  attacks: Measured[];
}

function label(run: RunFile): string {
  return `${run.root} @ ${run.commit}${run.modifiedFiles ? ` (+${run.modifiedFiles} modified files)` : ""}`;
}

function compare(files: string[]): void {
  const runs = files.map((f) => JSON.parse(readFileSync(f, "utf8")) as RunFile);
  for (const [i, run] of runs.entries())
    console.log(`run ${i + 1}: ${label(run)}, ${run.startedAt}, took ${run.totalSeconds.toFixed(0)} s`);
  const names = [...new Set(runs.flatMap((r) => r.attacks.map((a) => a.name)))];
  for (const name of names) {
    const perRun = runs.map((r) => r.attacks.find((a) => a.name === name));
    const rowSets = perRun.map((m) => (m ? rows(m) : []));
    const labels = [...new Set(rowSets.flatMap((rs) => rs.map(([k]) => k)))];
    const body = labels.map((l) => [l, ...rowSets.map((rs) => rs.find(([k]) => k === l)?.[1] ?? "")]);
    console.log(`\n${name}: ${perRun.find(Boolean)?.title ?? ""}\n`);
    console.log(table(["", ...runs.map((_, i) => `run ${i + 1}`)], body));
  }
}

// ---------------------------------------------------------------------------------------------

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0) return process.argv[i + 1];
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
  return eq?.slice(name.length + 3);
}

function git(root: string, ...args: string[]): string {
  const r = Bun.spawnSync(["git", "-C", root, ...args]);
  return r.exitCode === 0 ? r.stdout.toString().trim() : "";
}

async function main(): Promise<void> {
  const cmp = process.argv.indexOf("--compare");
  if (cmp >= 0) {
    compare(process.argv.slice(cmp + 1).filter((a) => !a.startsWith("--")));
    return;
  }
  const rootArg = arg("root");
  if (!rootArg) {
    console.error(
      "usage: bun bench/attacks.ts --root DIR [--only a,b,c] [--out FILE] [--fill 400] [--seconds 10] [--quiet-wait 30]",
    );
    process.exit(2);
  }
  const root = resolve(rootArg);
  const only = arg("only")
    ?.split(",")
    .map((s) => s.trim());
  const fillCount = Number(arg("fill") ?? 400);
  const seconds = Number(arg("seconds") ?? 10);
  const quietSeconds = Number(arg("quiet-wait") ?? 30);
  if (!(seconds > 0 && seconds <= 20)) throw new Error("--seconds must be in (0, 20]");
  const defs = ATTACKS.filter(
    (d, i) =>
      !only ||
      only.includes(d.name) ||
      only.includes(String(i + 1)) ||
      only.some((o) => d.name.startsWith(o)),
  );
  if (defs.length === 0) throw new Error(`--only matches none of ${ATTACKS.map((d) => d.name).join(", ")}`);
  const run: RunFile = {
    root,
    commit: git(root, "log", "-1", "--format=%h"),
    modifiedFiles: git(root, "status", "--porcelain").split("\n").filter(Boolean).length,
    startedAt: new Date().toISOString(),
    totalSeconds: 0,
    bun: Bun.version,
    cores: navigator.hardwareConcurrency,
    attacks: [],
  };
  console.log(`attacks on ${label(run)}`);
  const t0 = now();
  for (const def of defs) {
    const ta = now();
    console.log(`\n${def.name}: ${def.title} ...`);
    const m = await measure(root, def, fillCount, seconds * 1000, quietSeconds);
    run.attacks.push(m);
    console.log(`(${((now() - ta) / 1000).toFixed(0)} s)\n`);
    console.log(table(["", def.name], rows(m)));
  }
  run.totalSeconds = (now() - t0) / 1000;
  console.log(`\ntotal ${run.totalSeconds.toFixed(0)} s`);
  const outFile = arg("out");
  if (outFile) {
    writeFileSync(outFile, `${JSON.stringify(run, null, 2)}\n`);
    console.log(`wrote ${outFile}`);
  }
}

await main();
process.exit(0);
