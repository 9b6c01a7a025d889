/**
 * One load-generator process: holds WebSocket clients and runs the commands the orchestrator sends
 * over IPC (commands.ts). Chat texts carry `~SENDER:MICROS~`, so a receipt is matched and timed
 * from the bytes without decoding the frame.
 */
import { Histogram } from "../stats";
import type { BroadcastResult, Command, ConnectResult, Reply, Snapshot, Target } from "./commands";
import { nowMs } from "./commands";
import { type ClientSpec, DIALECTS, type Dialect, FRAME } from "./dialects";
import { LightConn } from "./light-client";
import { type GenConn, WsConn, type WsHandlers } from "./ws-client";

const TILDE = 0x7e;
const ZERO = 0x30;
const NINE = 0x39;
const COLON = 0x3a;
const QUOTE = 0x22;
/** `~` + 6-digit sender + `:` + 16-digit microseconds + `~` */
const STAMP_LENGTH = 25;
const FILLER = "the quick brown fox jumps over the lazy dog while the benchmark counts deliveries ";

interface Client {
  gid: number;
  spec: ClientSpec;
  conn: GenConn | undefined;
  ready: boolean;
  closing: boolean;
  startedAt: number;
  /** Own messages sent and not yet seen back. */
  inFlight: number;
  /** Closed-loop window; 0 for a client that only listens. */
  window: number;
  isSender: boolean;
  /** Messages this sender may still send; Infinity without a limit. */
  budget: number;
  armed: boolean;
  lastSeq: number;
  resumeToken: string | undefined;
  /** With checkSeq: where the digits of `seq` start in this room's chat frames. */
  seqAt: number;
}

let target: Target | undefined;
let dialect: Dialect = DIALECTS["chat-json"];
let clients: Client[] = [];
let sending = false;
let textLength = 64;
let deliveries = 0;
let sent = 0;
let errors = 0;
let firstErrorText: string | undefined;
let unexpectedCloses = 0;
let sendLagMaxMs = 0;
let checkSeq = false;
let seqGaps = 0;
let seqDupes = 0;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
let latencyOn = false;
const latency = new Histogram();
let openLoopTimer: ReturnType<typeof setTimeout> | undefined;

let armedLeft = 0;
let armedDoneAt = Number.NaN;
let onArmedDone: (() => void) | undefined;

/** Per-connect bookkeeping: who is still handshaking and how the batch is doing. */
let connecting: {
  queue: Client[];
  active: number;
  concurrency: number;
  result: ConnectResult;
  ready: Histogram;
  done: () => void;
} | null = null;

function stampText(gid: number, length: number): string {
  const micros = Math.round(nowMs() * 1000);
  const stamp = `~${String(gid).padStart(6, "0")}:${String(micros).padStart(16, "0")}~`;
  let text = stamp;
  while (text.length < length) text += FILLER;
  return text.slice(0, Math.max(length, STAMP_LENGTH));
}

function sendOne(c: Client): void {
  if (!c.conn?.isOpen || c.budget <= 0) return;
  c.budget--;
  c.conn.sendText(dialect.chat(stampText(c.gid, textLength)));
  c.inFlight++;
  sent++;
}

function readDigits(buf: Uint8Array, from: number, count: number): number {
  let n = 0;
  for (let i = from; i < from + count; i++) n = n * 10 + ((buf[i] as number) - ZERO);
  return n;
}

/** Where `seq`'s digits start in a chat frame of this room: `{"type":"chat","room":"…","seq":`. */
function seqOffset(room: string): number {
  return encoder.encode(`{"type":"chat","room":${JSON.stringify(room)},"seq":`).length;
}

/** Counts a gap or a duplicate when this chat's seq is not one above the last one the client saw. */
function checkOrder(c: Client, buf: Uint8Array, start: number, end: number): void {
  let i = start + c.seqAt;
  let seq = 0;
  if (i < end && buf[i - 1] === COLON && buf[i - 2] === QUOTE && buf[i - 3] === 0x71) {
    for (; i < end && (buf[i] as number) >= ZERO && (buf[i] as number) <= NINE; i++) {
      seq = seq * 10 + ((buf[i] as number) - ZERO);
    }
  } else {
    // Not the layout expected: read it the slow way.
    seq = Number(/"seq":(\d+)/.exec(decoder.decode(buf.subarray(start, end)))?.[1] ?? 0);
  }
  if (seq === c.lastSeq + 1) c.lastSeq = seq;
  else if (seq > c.lastSeq) {
    seqGaps += seq - c.lastSeq - 1;
    c.lastSeq = seq;
  } else seqDupes++;
}

function onChat(c: Client, buf: Uint8Array, start: number, end: number): void {
  deliveries++;
  if (checkSeq) checkOrder(c, buf, start, end);
  if (c.armed) {
    c.armed = false;
    if (--armedLeft === 0) {
      armedDoneAt = nowMs();
      onArmedDone?.();
    }
  }
  if (!latencyOn && !c.isSender) return;
  const t = buf.indexOf(TILDE, start);
  if (t < 0 || t + STAMP_LENGTH > end || buf[t + STAMP_LENGTH - 1] !== TILDE) return;
  if (latencyOn) latency.record(nowMs() * 1000 - readDigits(buf, t + 8, 16));
  if (c.isSender && readDigits(buf, t + 1, 6) === c.gid) {
    c.inFlight--;
    if (sending && c.window > 0 && c.inFlight < c.window) sendOne(c);
  }
}

function becameReady(c: Client): void {
  if (c.ready) return;
  c.ready = true;
  const batch = connecting;
  if (!batch) return;
  batch.ready.record((nowMs() - c.startedAt) * 1000);
  batch.active--;
  pump();
}

const handlers: WsHandlers = {
  open(conn) {
    const c = conn.owner as Client;
    if (dialect.opened(conn)) becameReady(c);
  },
  frame(conn, opcode, buf, start, end) {
    if (opcode !== 1) return;
    const c = conn.owner as Client;
    const kind = dialect.classify(conn, buf, start, end);
    if (kind === FRAME.chat) onChat(c, buf, start, end);
    else if (kind === FRAME.welcome) {
      if (!c.ready && connecting) {
        const w = dialect.welcome(buf, start, end);
        c.lastSeq = w.lastSeq;
        c.resumeToken = w.resumeToken;
        const r = connecting.result;
        r.historyMin = Math.min(r.historyMin, w.history);
        r.historyMax = Math.max(r.historyMax, w.history);
        if (w.truncated) r.truncated++;
      }
      becameReady(c);
    } else if (kind === FRAME.error) {
      errors++;
      firstErrorText ??= decoder.decode(buf.subarray(start, Math.min(end, start + 300)));
    }
  },
  closed(conn, reason, status) {
    const c = conn.owner as Client;
    if (c.conn !== conn) return;
    c.conn = undefined;
    if (!c.ready) {
      const batch = connecting;
      if (batch) {
        batch.result.firstError ??= status ? `${reason} (${status})` : reason;
        batch.active--;
        pump();
      }
      return;
    }
    c.ready = false;
    if (!c.closing) unexpectedCloses++;
  },
};

/** Starts handshakes while fewer than `concurrency` are pending; finishes the batch at the end. */
function pump(): void {
  const batch = connecting;
  if (!batch) return;
  while (batch.active < batch.concurrency && batch.queue.length > 0) {
    const c = batch.queue.shift() as Client;
    batch.active++;
    c.startedAt = nowMs();
    c.closing = false;
    c.ready = false;
    const t = target as Target;
    c.conn = (t.client === "light" ? LightConn : WsConn).connect(
      {
        hostname: t.hostname,
        port: c.spec.port ?? t.port,
        path: dialect.path(c.spec),
        localAddress: c.spec.localAddress,
      },
      handlers,
      c,
    );
  }
  if (batch.active === 0 && batch.queue.length === 0) batch.done();
}

function connectAll(list: Client[], concurrency: number, timeoutMs: number): Promise<ConnectResult> {
  const began = nowMs();
  return new Promise((resolve) => {
    const ready = new Histogram();
    const result: ConnectResult = {
      connected: 0,
      failed: 0,
      firstError: undefined,
      ms: 0,
      readyHist: [],
      readyMax: 0,
      historyMin: Number.POSITIVE_INFINITY,
      historyMax: 0,
      truncated: 0,
    };
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      connecting = null;
      result.ms = nowMs() - began;
      for (const c of list) {
        if (c.ready) continue;
        if (c.conn) result.firstError ??= "timed out waiting to be ready";
        c.conn?.destroy();
      }
      result.connected = list.filter((c) => c.ready).length;
      result.failed = list.length - result.connected;
      result.readyHist = ready.toData();
      result.readyMax = ready.max / 1000;
      if (result.historyMin === Number.POSITIVE_INFINITY) result.historyMin = 0;
      resolve(result);
    };
    const timer = setTimeout(finish, timeoutMs);
    connecting = {
      queue: [...list],
      active: 0,
      concurrency: Math.max(1, concurrency),
      result,
      ready,
      done: finish,
    };
    pump();
  });
}

function snapshot(reset: boolean): Snapshot {
  const snap: Snapshot = {
    at: nowMs(),
    deliveries,
    sent,
    errors,
    firstError: firstErrorText,
    unexpectedCloses,
    sendLagMaxMs,
    seqGaps,
    seqDupes,
    latency: latency.toData(),
    latencyMax: latency.max / 1000,
  };
  if (reset) {
    latency.reset();
    sendLagMaxMs = 0;
  }
  return snap;
}

function startOpenLoop(cmd: Extract<Command, { cmd: "openLoop" }>): void {
  const interval = 1000 / cmd.rate;
  const plan = cmd.senders.map(([index, offsetMs]) => ({
    c: clients[index] as Client,
    due: cmd.startAt + offsetMs,
  }));
  for (const p of plan) p.c.isSender = true;
  latencyOn = true;
  sending = true;
  const tick = () => {
    if (!sending) return;
    const now = nowMs();
    let next = Number.POSITIVE_INFINITY;
    for (const p of plan) {
      // Bounded catch-up: a process that fell far behind sends at most 100 late messages per sender.
      for (let i = 0; p.due <= now && i < 100; i++) {
        sendLagMaxMs = Math.max(sendLagMaxMs, now - p.due);
        sendOne(p.c);
        p.due += interval;
      }
      next = Math.min(next, p.due);
    }
    openLoopTimer = setTimeout(tick, Math.max(0, next - nowMs()));
  };
  openLoopTimer = setTimeout(tick, Math.max(0, cmd.startAt - nowMs()));
}

async function stopSending(timeoutMs: number, spendBudget: boolean): Promise<{ inFlight: number }> {
  const until = nowMs() + timeoutMs;
  while (
    spendBudget &&
    nowMs() < until &&
    clients.some((c) => c.isSender && c.conn?.isOpen && c.budget > 0)
  ) {
    await Bun.sleep(10);
  }
  sending = false;
  clearTimeout(openLoopTimer);
  let last = -1;
  let stableSince = nowMs();
  for (;;) {
    const inFlight = clients.reduce((n, c) => n + (c.ready && c.isSender ? Math.max(0, c.inFlight) : 0), 0);
    if (deliveries !== last) {
      last = deliveries;
      stableSince = nowMs();
    }
    if ((inFlight === 0 && nowMs() - stableSince > 100) || nowMs() > until) {
      for (const c of clients) {
        c.inFlight = 0;
        c.window = 0;
        c.isSender = false;
        c.budget = Number.POSITIVE_INFINITY;
      }
      latencyOn = false;
      return { inFlight };
    }
    await Bun.sleep(20);
  }
}

function broadcast(cmd: Extract<Command, { cmd: "broadcast" }>): Promise<BroadcastResult> {
  textLength = cmd.textLength;
  return new Promise((resolve) => {
    let firstSendAt = Number.NaN;
    const finish = () => {
      clearTimeout(timer);
      onArmedDone = undefined;
      resolve({ firstSendAt, doneAt: armedLeft === 0 ? armedDoneAt : Number.NaN, missing: armedLeft });
    };
    const timer = setTimeout(finish, cmd.timeoutMs);
    const fire = () => {
      for (const index of cmd.senders) {
        const c = clients[index];
        if (!c?.conn?.isOpen) continue;
        if (Number.isNaN(firstSendAt)) firstSendAt = nowMs();
        c.conn.sendText(dialect.chat(stampText(c.gid, cmd.textLength)));
        sent++;
      }
      if (armedLeft === 0) finish();
      else onArmedDone = finish;
    };
    setTimeout(fire, Math.max(0, cmd.at - nowMs()));
  });
}

async function closeAll(timeoutMs: number): Promise<{ left: number }> {
  for (const c of clients) {
    c.closing = true;
    c.conn?.close(1000);
  }
  const until = nowMs() + timeoutMs;
  while (clients.some((c) => c.conn) && nowMs() < until) await Bun.sleep(20);
  const left = clients.filter((c) => c.conn).length;
  for (const c of clients) c.conn?.destroy();
  return { left };
}

async function handle(msg: Command): Promise<unknown> {
  switch (msg.cmd) {
    case "connect": {
      target = msg.target;
      dialect = DIALECTS[msg.target.dialect];
      const fresh = msg.clients.map(
        (spec, i): Client => ({
          gid: msg.idBase + i,
          spec,
          conn: undefined,
          ready: false,
          closing: false,
          startedAt: 0,
          inFlight: 0,
          window: 0,
          isSender: false,
          budget: Number.POSITIVE_INFINITY,
          armed: false,
          lastSeq: 0,
          resumeToken: undefined,
          seqAt: msg.checkSeq ? seqOffset(spec.room) : 0,
        }),
      );
      for (const c of clients) c.conn?.destroy();
      clients = fresh;
      deliveries = 0;
      sent = 0;
      errors = 0;
      firstErrorText = undefined;
      unexpectedCloses = 0;
      checkSeq = msg.checkSeq === true;
      seqGaps = 0;
      seqDupes = 0;
      return connectAll(fresh, msg.concurrency, msg.timeoutMs);
    }
    case "reconnect": {
      for (const c of clients) {
        c.spec = { ...c.spec, since: c.lastSeq };
        if (c.resumeToken !== undefined) c.spec.resume = c.resumeToken;
      }
      return connectAll(clients, msg.concurrency, msg.timeoutMs);
    }
    case "closedLoop": {
      textLength = msg.textLength;
      sending = true;
      for (const index of msg.senders) {
        const c = clients[index];
        if (!c) continue;
        c.isSender = true;
        c.window = msg.window;
        c.budget = msg.limit ?? Number.POSITIVE_INFINITY;
      }
      for (const index of msg.senders) {
        const c = clients[index];
        if (c) for (let i = 0; i < msg.window; i++) sendOne(c);
      }
      return null;
    }
    case "openLoop":
      textLength = msg.textLength;
      startOpenLoop(msg);
      return null;
    case "stopSending":
      return stopSending(msg.timeoutMs, msg.spendBudget === true);
    case "snapshot":
      return snapshot(msg.reset);
    case "arm":
      armedLeft = 0;
      armedDoneAt = Number.NaN;
      for (const c of clients) {
        c.armed = c.ready;
        if (c.armed) armedLeft++;
      }
      return { armed: armedLeft };
    case "broadcast":
      return broadcast(msg);
    case "close":
      return closeAll(msg.timeoutMs);
    case "exit":
      setTimeout(() => process.exit(0), 10);
      return null;
  }
}

process.on("message", (raw: unknown) => {
  const { id, command } = raw as { id: number; command: Command };
  handle(command).then(
    (value) => process.send?.({ id, ok: true, value } satisfies Reply),
    (err: unknown) =>
      process.send?.({
        id,
        ok: false,
        error: err instanceof Error ? err.message : String(err),
      } satisfies Reply),
  );
});
// Never outlive the orchestrator, whatever way it ended.
process.on("disconnect", () => process.exit(0));
setInterval(() => {
  if (process.ppid === 1) process.exit(0);
}, 1000);
process.send?.({ id: 0, ok: true, value: "ready" } satisfies Reply);
