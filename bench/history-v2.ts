/**
 * The cost of folding history: server time of a v2 `history` of 200 posts with 10 reactions each
 * (the core over the local engine and a SQLite file, no sockets), against the same history of
 * 200 plain posts, measured in one run.
 *
 *   bun bench/history-v2.ts [--reps 50]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { Connection } from "../server/chat/connection";
import { ChatHub } from "../server/chat/hub";
import { chatLimits } from "../server/chat/limits";
import type { Peer } from "../server/chat/peer";
import { DEFAULT_CONFIG } from "../server/config";
import { LocalEngine } from "../server/engines/local/local-engine";
import { SqliteStore } from "../server/engines/local/sqlite-store";

const { values } = parseArgs({ options: { reps: { type: "string", default: "50" } } });
const REPS = Number(values.reps);
const POSTS = 200;
const REACTIONS = 10;

const dir = mkdtempSync(join(tmpdir(), "history-v2-"));
const limits = {
  ...chatLimits(DEFAULT_CONFIG),
  rateLimit: 0,
  controlRate: 0,
  frameRate: 0,
  historyBytesPerSecond: 0,
};
const engine = new LocalEngine<Connection>({
  store: new SqliteStore(join(dir, "chat.db")),
  resumeTtlMs: limits.resumeTtlMs,
  dedupeWindow: limits.dedupeWindow,
  schedule: (fn) => setImmediate(fn),
});
const hub = new ChatHub({ engine, fanout: { publish() {} }, limits });
const turn = () => new Promise((r) => setImmediate(r));

/** A v2 connection whose frames land in `inbox`. */
function connect(userId: string, nick: string) {
  const inbox: string[] = [];
  const peer: Peer = {
    send: (data) => inbox.push(data),
    bufferedAmount: () => 0,
    subscribe() {},
    unsubscribe() {},
    publishOthers() {},
    close() {},
  };
  const conn = hub.open(peer, { room: "", v2: { userId, mod: false, nick, identityToken: `${userId}.x` } });
  return { conn, inbox, send: (msg: object) => hub.receive(conn, JSON.stringify(msg)) };
}

async function fill(room: string, reactions: number): Promise<void> {
  const users = Array.from({ length: REACTIONS }, (_, i) => connect(`${room}-u${i}`, `${room}-n${i}`));
  for (const u of users) u.send({ type: "join", room });
  await turn();
  await turn();
  for (let i = 1; i <= POSTS; i++)
    users[0]?.send({ type: "chat", room, text: `post ${i} of a history to fold` });
  await turn();
  for (let seq = 1; seq <= POSTS; seq++) {
    for (let k = 0; k < reactions; k++) {
      users[k]?.send({ type: "react", room, seq, emoji: [":+1:", ":tada:", ":eyes:"][k % 3], on: true });
    }
    if (seq % 20 === 0) await turn();
  }
  await turn();
  await turn();
}

async function time(room: string): Promise<{ ms: number[]; bytes: number }> {
  const reader = connect(`${room}-reader`, `${room}-reader`);
  reader.send({ type: "join", room });
  await turn();
  await turn();
  const ms: number[] = [];
  let bytes = 0;
  for (let i = 0; i < REPS + 5; i++) {
    const before = reader.inbox.length;
    const start = performance.now();
    reader.send({ type: "history", room, limit: 200 });
    const answer = reader.inbox.slice(before).find((d) => d.startsWith('{"type":"history"'));
    if (answer === undefined) throw new Error("history did not answer in the same turn");
    if (i >= 5) ms.push(performance.now() - start);
    bytes = answer.length;
    await turn();
  }
  return { ms: ms.sort((a, b) => a - b), bytes };
}

await fill("plain", 0);
await fill("reacted", REACTIONS);
const median = (xs: number[]) => xs[Math.floor(xs.length / 2)] as number;
const plain = await time("plain");
const reacted = await time("reacted");
console.log(
  `history of ${POSTS} posts, v2 (folded): plain ${median(plain.ms).toFixed(2)} ms (${plain.bytes} B); ` +
    `with ${REACTIONS} reactions each ${median(reacted.ms).toFixed(2)} ms (${reacted.bytes} B); ` +
    `ratio ${(median(reacted.ms) / median(plain.ms)).toFixed(2)} (median of ${REPS}, server time in the core)`,
);
await hub.stop();
rmSync(dir, { recursive: true, force: true });
