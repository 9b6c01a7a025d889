/**
 * The bystander of the attack benchmark, in its own process so that the attack's work in the main
 * process does not delay it: a normal WebSocket client in room `calm` that sends one chat with an
 * id every 100 ms and notes when each ack comes; it also samples the server's VmRSS every 100 ms.
 *
 * `bun bench/attacks/bystander.ts PORT SERVER_PID`, spawned with IPC: it sends `{type:"ready"}` once
 * welcomed, answers `{type:"pending",before}` with `{type:"pending",count}` (pings sent before that
 * time still waiting for an ack) and `{type:"stop"}` with `{type:"result", ...}` (times in ms since
 * the epoch, `performance.timeOrigin + performance.now()`, comparable across processes).
 */
import { readFileSync } from "node:fs";

export interface BystanderResult {
  type: "result";
  /** Per ping: when it was sent. */
  sent: number[];
  /** Per ping: when its ack came, or -1. */
  acked: number[];
  /** Per ping: the error code the server answered instead, or "". */
  failed: string[];
  /** Flat pairs: time, VmRSS in KiB (NaN when unreadable is sent as -1). */
  samples: number[];
  /** Why the bystander's socket closed, if it did. */
  closed: string | null;
}

const port = Number(process.argv[2]);
const pid = Number(process.argv[3]);
const now = () => performance.timeOrigin + performance.now();

function rssKiB(): number {
  try {
    const m = /^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : -1;
  } catch {
    return -1;
  }
}

const sent: number[] = [];
const acked: number[] = [];
const failed: string[] = [];
const samples: number[] = [];
let closed: string | null = null;
let ticker: ReturnType<typeof setInterval> | undefined;

const sampler = setInterval(() => samples.push(now(), rssKiB()), 100);
samples.push(now(), rssKiB());

const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?room=calm&nick=bystander`);

function ping(): void {
  if (ws.readyState !== WebSocket.OPEN) return;
  const n = sent.length;
  sent.push(now());
  acked.push(-1);
  failed.push("");
  ws.send(`{"type":"chat","text":"ping ${n}","id":"b${n}"}`);
}

ws.onmessage = (e) => {
  const t = now();
  const text = typeof e.data === "string" ? e.data : "";
  const msg = JSON.parse(text) as { type: string; id?: string; code?: string };
  if (msg.type === "ack" && msg.id) {
    const n = Number(msg.id.slice(1));
    if (acked[n] === -1) acked[n] = t;
  } else if (msg.type === "error") {
    const n = msg.id ? Number(msg.id.slice(1)) : Number.NaN;
    if (failed[n] === "") failed[n] = msg.code ?? "error";
  } else if (msg.type === "welcome" && !ticker) {
    ticker = setInterval(ping, 100);
    process.send?.({ type: "ready" });
  }
};
ws.onclose = (e) => {
  closed ??= `closed ${e.code}`;
};
ws.onerror = () => {
  closed ??= "error";
};

process.on("message", (message: { type?: string; before?: number }) => {
  if (message?.type === "pending") {
    // Pings sent before `before` still waiting for their ack (none can come once the socket is gone).
    let count = 0;
    if (ws.readyState === WebSocket.OPEN)
      for (let i = 0; i < sent.length && (sent[i] as number) < (message.before ?? 0); i++)
        if (acked[i] === -1 && failed[i] === "") count++;
    process.send?.({ type: "pending", count });
    return;
  }
  if (message?.type !== "stop") return;
  clearInterval(ticker);
  clearInterval(sampler);
  samples.push(now(), rssKiB());
  const result: BystanderResult = { type: "result", sent, acked, failed, samples, closed };
  process.send?.(result);
  ws.close();
  setTimeout(() => process.exit(0), 50);
});
