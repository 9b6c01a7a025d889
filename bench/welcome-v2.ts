/**
 * The cost of a v2 welcome for a user in many rooms with much unread: its bytes, and the server's
 * time from open to welcome (the core over the local engine and a SQLite file, no sockets). Setup:
 * ROOMS rooms, each with POSTS posts by another user, every 50th mentioning ours, none read.
 *
 *   bun bench/welcome-v2.ts [--rooms 100] [--posts 5000] [--reps 20]
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
import type { StoredMessage } from "../server/engines/local/store";

const { values } = parseArgs({
  options: {
    rooms: { type: "string", default: "100" },
    posts: { type: "string", default: "5000" },
    reps: { type: "string", default: "20" },
  },
});
const ROOMS = Number(values.rooms);
const POSTS = Number(values.posts);
const REPS = Number(values.reps);

const dir = mkdtempSync(join(tmpdir(), "welcome-v2-"));
const store = new SqliteStore(join(dir, "chat.db"));
const done = <T>(fn: (cb: (err: unknown, v?: T) => void) => void): T => {
  let out: T | undefined;
  fn((err, v) => {
    if (err) throw err;
    out = v;
  });
  return out as T;
};

// The user and its rooms, marker at 0; the posts by someone else, written in big transactions.
done<void>((cb) => store.users.create("reader", "ann", cb));
const rooms = Array.from({ length: ROOMS }, (_, i) => `room-${i}`);
for (const room of rooms) done((cb) => store.users.join("reader", { room, readSeq: 0 }, ROOMS, cb));
const t0 = performance.now();
for (const room of rooms) {
  const batch: StoredMessage[] = [];
  for (let seq = 1; seq <= POSTS; seq++) {
    const mention = seq % 50 === 0;
    batch.push({
      room,
      seq,
      nick: "bob",
      text: mention ? `hey @ann ${seq}` : `post ${seq}`,
      sentAt: Date.now(),
      session: "u:writer",
      clientId: null,
      userId: "writer",
      mentions: mention ? ["ann"] : null,
      mentionIds: mention ? ["reader"] : null,
    });
  }
  store.commit(batch, []);
}
console.log(`setup: ${ROOMS} rooms x ${POSTS} posts in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

const limits = chatLimits(DEFAULT_CONFIG);
const engine = new LocalEngine<Connection>({
  store,
  resumeTtlMs: limits.resumeTtlMs,
  dedupeWindow: limits.dedupeWindow,
  schedule: (fn) => setImmediate(fn),
});
const hub = new ChatHub({ engine, fanout: { publish() {} }, limits });

function welcomeOnce(): Promise<{ ms: number; bytes: number; unread: number; mentions: number }> {
  return new Promise((resolve) => {
    const start = performance.now();
    const peer: Peer = {
      send(data) {
        if (data.startsWith('{"type":"welcome"')) {
          const w = JSON.parse(data) as { rooms: Array<{ unread: number; mentions: number }> };
          resolve({
            ms: performance.now() - start,
            bytes: Buffer.byteLength(data),
            unread: w.rooms.reduce((n, r) => n + r.unread, 0),
            mentions: w.rooms.reduce((n, r) => n + r.mentions, 0),
          });
          queueMicrotask(() => hub.close(conn, 1000));
        }
        return data.length;
      },
      bufferedAmount: () => 0,
      subscribe() {},
      unsubscribe() {},
      publishOthers() {},
      close() {},
    };
    const conn = hub.open(peer, { room: "", v2: { userId: "reader", mod: false } });
  });
}

const samples: Array<{ ms: number; bytes: number; unread: number; mentions: number }> = [];
for (let i = 0; i < REPS + 3; i++) {
  const s = await welcomeOnce();
  await new Promise((r) => setImmediate(r));
  if (i >= 3) samples.push(s); // the first ones warm the caches and the JIT
}
const ms = samples.map((s) => s.ms).sort((a, b) => a - b);
const first = samples[0] as (typeof samples)[number];
console.log(
  `welcome of a user in ${ROOMS} rooms with ${POSTS} unread posts each: ${first.bytes} bytes, ` +
    `median ${ms[Math.floor(ms.length / 2)]?.toFixed(2)} ms, p90 ${ms[Math.floor(ms.length * 0.9)]?.toFixed(2)} ms ` +
    `(server time, open to welcome, over ${REPS}); unread ${first.unread} (capped at 1000 a room), mentions ${first.mentions}`,
);
await hub.stop();
rmSync(dir, { recursive: true, force: true });
