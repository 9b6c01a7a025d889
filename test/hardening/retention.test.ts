/**
 * Retention (RETENTION_MAX_MESSAGES, RETENTION_MAX_AGE_DAYS) on the local engine: the sweep deletes
 * what is no longer kept, history and welcomes start later, and a room's seq never goes back, even
 * after a restart. A big deletion goes in steps, a turn each.
 */
import { afterAll, afterEach, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChatMessage } from "../../protocol";
import type { Connection } from "../../server/chat/connection";
import { LocalEngine } from "../../server/engines/local/local-engine";
import { MemoryStore } from "../../server/engines/local/memory-store";
import { SqliteStore } from "../../server/engines/local/sqlite-store";
import type { ChatStore, StoredMessage } from "../../server/engines/local/store";
import { closeAllClients, connect, type TestClient } from "../support/test-client";
import { startTestServer, stopAllServers, stopTestServer } from "../support/test-server";

afterEach(async () => {
  await closeAllClients();
  await stopAllServers();
});

const tmp = mkdtempSync(join(tmpdir(), "chat-retention-"));
let files = 0;
const dbPath = () => join(tmp, `chat-${++files}.db`);
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

const DAY = 24 * 60 * 60 * 1000;
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const seqs = (messages: ChatMessage[]) => messages.map((m) => m.seq);

async function httpHistory(base: URL, room: string, query = "limit=200") {
  const res = await fetch(new URL(`/api/rooms/${room}/messages?${query}`, base));
  expect(res.status).toBe(200);
  const page = (await res.json()) as { messages: ChatMessage[]; hasMore: boolean };
  return { seqs: seqs(page.messages), hasMore: page.hasMore };
}

async function wsHistory(client: TestClient, before?: number, limit = 100) {
  client.send({ type: "history", limit, ...(before === undefined ? {} : { before }) });
  const page = await client.next("history");
  return { seqs: seqs(page.messages), hasMore: page.hasMore };
}

describe("RETENTION_MAX_MESSAGES", () => {
  it("keeps the newest N of each room after a sweep, in history, over HTTP and in welcomes; seq goes on after a restart", async () => {
    const path = dbPath();
    const srv = startTestServer({ DB_PATH: path, RETENTION_MAX_MESSAGES: "10", RATE_LIMIT: "0" });
    const alice = await connect(srv.url, { room: "big", nick: "alice" });
    const bob = await connect(srv.url, { room: "small", nick: "bob" });
    await alice.post("m", 25);
    await bob.post("s", 4);
    // A welcome read before the sweep: the next one must not be served from it.
    expect(seqs((await connect(srv.url, { room: "big", nick: "early" })).welcome.history)).toEqual(
      range(1, 25),
    );

    srv.hub.sweep();

    expect(await wsHistory(alice)).toEqual({ seqs: range(16, 25), hasMore: false });
    expect(await wsHistory(alice, 20, 10)).toEqual({ seqs: range(16, 19), hasMore: false });
    expect(await wsHistory(alice, 20, 2)).toEqual({ seqs: [18, 19], hasMore: true });
    expect(await httpHistory(srv.url, "big")).toEqual({ seqs: range(16, 25), hasMore: false });
    expect(await httpHistory(srv.url, "small")).toEqual({ seqs: range(1, 4), hasMore: false });
    const late = await connect(srv.url, { room: "big", nick: "late" });
    expect(seqs(late.welcome.history)).toEqual(range(16, 25));
    expect(late.welcome.historyTruncated).toBe(false);
    expect(late.welcome.lastSeq).toBe(25);
    const back = await connect(srv.url, { room: "big", nick: "back", since: 3 });
    expect(seqs(back.welcome.history)).toEqual(range(16, 25));

    // New messages go on from 26; the next sweep keeps 10 again.
    expect((await alice.post("n", 3)).map((a) => a.seq)).toEqual([26, 27, 28]);
    srv.hub.sweep();
    expect(await httpHistory(srv.url, "big")).toEqual({ seqs: range(19, 28), hasMore: false });

    await stopTestServer(srv);
    const restarted = startTestServer({ DB_PATH: path, RATE_LIMIT: "0" });
    const carol = await connect(restarted.url, { room: "big", nick: "carol" });
    expect(carol.welcome.lastSeq).toBe(28);
    expect((await carol.post("after", 1)).map((a) => a.seq)).toEqual([29]);
    expect(await httpHistory(restarted.url, "big")).toEqual({ seqs: range(19, 29), hasMore: false });
  });
});

/** Messages 1..n of `room`, sent at the times `at(seq)` gives. */
function messages(room: string, from: number, to: number, at: (seq: number) => number): StoredMessage[] {
  return range(from, to).map((seq) => ({
    room,
    seq,
    nick: "old-timer",
    text: `${room} ${seq}`,
    sentAt: at(seq),
    session: "s-old",
    clientId: null,
  }));
}

describe("RETENTION_MAX_AGE_DAYS", () => {
  it("deletes what is older at a sweep, never a room's newest message, and seq goes on after a restart", async () => {
    const path = dbPath();
    const now = Date.now();
    const store = new SqliteStore(path);
    store.commit(
      [
        ...messages("mixed", 1, 6, (seq) => now - 3 * DAY + seq),
        ...messages("mixed", 7, 9, (seq) => now - 60 * 60 * 1000 + seq),
        ...messages("stale", 1, 5, (seq) => now - 10 * DAY + seq),
        ...messages("fresh", 1, 3, (seq) => now - 1000 + seq),
      ],
      [],
    );
    store.close();

    const srv = startTestServer({ DB_PATH: path, RETENTION_MAX_AGE_DAYS: "1.5" });
    srv.hub.sweep();
    expect(await httpHistory(srv.url, "mixed")).toEqual({ seqs: [7, 8, 9], hasMore: false });
    expect(await httpHistory(srv.url, "stale")).toEqual({ seqs: [5], hasMore: false });
    expect(await httpHistory(srv.url, "fresh")).toEqual({ seqs: [1, 2, 3], hasMore: false });

    const dan = await connect(srv.url, { room: "stale", nick: "dan" });
    expect(dan.welcome.lastSeq).toBe(5);
    expect((await dan.post("revived", 1)).map((a) => a.seq)).toEqual([6]);
    await stopTestServer(srv);

    const restarted = startTestServer({ DB_PATH: path, RETENTION_MAX_AGE_DAYS: "1.5" });
    restarted.hub.sweep();
    // 5 is old, but no longer the newest: it goes; 6 was just sent.
    expect(await httpHistory(restarted.url, "stale")).toEqual({ seqs: [6], hasMore: false });
    const eve = await connect(restarted.url, { room: "stale", nick: "eve" });
    expect((await eve.post("again", 1)).map((a) => a.seq)).toEqual([7]);
  });
});

describe("a sweep with a lot to delete", () => {
  for (const [name, open] of [
    ["MemoryStore", () => new MemoryStore()],
    ["SqliteStore", () => new SqliteStore(dbPath())],
  ] as Array<[string, () => ChatStore]>) {
    it(`deletes in steps of bounded size, one a turn, one pass at a time (${name})`, async () => {
      const store = open();
      for (let first = 1; first <= 9000; first += 1000) {
        store.commit(
          messages("busy", first, first + 999, () => 0),
          [],
        );
      }
      const turns: Array<() => void> = [];
      const engine = new LocalEngine<Connection>({
        store,
        resumeTtlMs: 60_000,
        dedupeWindow: 100,
        schedule: (fn) => turns.push(fn),
        timer: () => {},
        retention: { maxMessages: 1000, maxAgeMs: 0 },
      });
      const count = () => store.after("busy", 0, 100_000).messages.length;

      engine.sweep();
      const afterFirst = count();
      expect(afterFirst).toBeLessThan(9000);
      expect(9000 - afterFirst).toBeLessThanOrEqual(500);
      expect(turns.length).toBe(1);
      engine.sweep(); // a pass is under way: no second one
      expect(turns.length).toBe(1);
      let steps = 1;
      while (turns.length > 0) {
        const before = count();
        (turns.shift() as () => void)();
        expect(before - count()).toBeLessThanOrEqual(500);
        steps++;
      }
      expect(steps).toBeGreaterThanOrEqual(16);
      expect(seqs(store.after("busy", 0, 100_000).messages)).toEqual(range(8001, 9000));
      expect(store.lastSeq("busy")).toBe(9000);

      // Stopped with a step pending: the step does nothing (the store is closed).
      store.commit(
        messages("busy", 9001, 12_000, () => 0),
        [],
      );
      engine.sweep();
      expect(turns.length).toBe(1);
      await engine.stop();
      expect(() => (turns.shift() as () => void)()).not.toThrow();
    });
  }
});
