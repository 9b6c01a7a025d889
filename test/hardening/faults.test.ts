/**
 * Fault injection: storage that throws on commit or on reads, SQLite that is really full or read-only,
 * and SIGTERM under load. One client's failure reaches that client only; nothing acknowledged is lost;
 * the process goes on and recovers when storage does.
 */
import { afterAll, afterEach, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChatMessage } from "../../protocol";
import { MemoryStore } from "../../server/engines/local/memory-store";
import { SqliteStore } from "../../server/engines/local/sqlite-store";
import type { Page, SessionRecord, StoredChange, StoredMessage } from "../../server/engines/local/store";
import { killAllServerProcesses, spawnServer } from "../support/server-process";
import { closeAllClients, connect, connectUrl, TestClient } from "../support/test-client";
import { startTestServer, stopAllServers, stopTestServer } from "../support/test-server";
import { sleep } from "../support/timing";

afterEach(async () => {
  await closeAllClients();
  await stopAllServers();
});

const tmp = mkdtempSync(join(tmpdir(), "chat-faults-"));
afterAll(async () => {
  await killAllServerProcesses();
  rmSync(tmp, { recursive: true, force: true });
});

/** A MemoryStore whose operations throw while their switch is set, as a failing disk would. */
class FaultyStore extends MemoryStore {
  commitError: string | undefined;
  readsFail = false;
  lastSeqFails = false;

  override commit(
    messages: readonly StoredMessage[],
    sessions: readonly SessionRecord[],
    changes: readonly StoredChange[] = [],
  ): void {
    if (this.commitError !== undefined) throw new Error(this.commitError);
    super.commit(messages, sessions, changes);
  }

  override before(room: string, before: number, limit: number): Page {
    if (this.readsFail) throw new Error("SQLITE_IOERR: disk I/O error");
    return super.before(room, before, limit);
  }

  override after(room: string, after: number, limit: number): Page {
    if (this.readsFail) throw new Error("SQLITE_IOERR: disk I/O error");
    return super.after(room, after, limit);
  }

  override lastSeq(room: string): number {
    if (this.lastSeqFails) throw new Error("SQLITE_CORRUPT: database disk image is malformed");
    return super.lastSeq(room);
  }
}

/** SqliteStore with its own connection in reach, to make it really full or read-only. */
class TightSqliteStore extends SqliteStore {
  pragma(sql: string): unknown {
    return this.db.query(`PRAGMA ${sql}`).get();
  }
}

async function sentinel(from: TestClient, to: TestClient, text = `sentinel-${Math.random()}`): Promise<void> {
  from.send({ type: "chat", text });
  await to.waitFor("chat", (m) => m.text === text);
}

async function who(client: TestClient): Promise<string[]> {
  client.send({ type: "who" });
  return (await client.next("users")).users;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}

/** What each client received other than chats, presence and the answers it asked for. */
function unexpected(client: TestClient): string[] {
  return client.received
    .slice(1)
    .filter((m) => !["chat", "presence", "users", "ack"].includes(m.type))
    .map((m) => JSON.stringify(m));
}

describe("a commit that throws", () => {
  it("answers internal to the sender only, acks nothing, and stores the next messages with no seq gap", async () => {
    const store = new FaultyStore();
    const srv = startTestServer({ RATE_LIMIT: "0" }, { store });
    const a = await connect(srv.url, { room: "r", nick: "alice" });
    const b = await connect(srv.url, { room: "r", nick: "bob" });
    const c = await connect(srv.url, { room: "s", nick: "carol" });
    await a.post("ok", 2);

    for (const error of [
      "SQLITE_FULL: database or disk is full",
      "SQLITE_READONLY: attempt to write a readonly database",
    ]) {
      store.commitError = error;
      const id = `lost-${error.slice(7, 11)}`;
      a.send({ type: "chat", text: id, id });
      expect(await a.next("error")).toMatchObject({ code: "internal", id });
      a.send({ type: "chat", text: "no id either" });
      expect(await a.next("error")).toMatchObject({ code: "internal" });
      // The process goes on: requests that need no write are answered.
      expect(await who(a)).toEqual(["alice", "bob"]);
    }
    expect(a.all("ack").map((k) => k.seq)).toEqual([1, 2]);

    store.commitError = undefined;
    a.send({ type: "chat", text: "lost-FULL", id: "lost-FULL" }); // sent again: stored now
    expect(await a.waitFor("ack", (k) => k.id === "lost-FULL")).toEqual({
      type: "ack",
      id: "lost-FULL",
      seq: 3,
    });
    await a.post("after", 2);
    await sentinel(a, b);
    expect(b.chats().map((m) => m.seq)).toEqual(range(1, 6));
    expect(b.chats().map((m) => m.text)).not.toContain("no id either");
    expect(unexpected(b)).toEqual([]);
    expect(c.received.slice(1)).toEqual([]);
    expect(store.before("r", 100, 100).messages.map((m) => m.seq)).toEqual(range(1, 6));
    expect(srv.hub.metrics.storeFailures).toBe(4);
  });
});

describe("reads that throw", () => {
  it("answer history with internal to that client only; a welcome that cannot read closes with 1011", async () => {
    const store = new FaultyStore();
    const srv = startTestServer({}, { store });
    const a = await connect(srv.url, { room: "r", nick: "alice" });
    const b = await connect(srv.url, { room: "r", nick: "bob" });
    const c = await connect(srv.url, { room: "t", nick: "carol" });
    await a.post("m", 3);

    store.readsFail = true;
    a.send({ type: "history", limit: 10 });
    expect((await a.next("error")).code).toBe("internal");
    // A new connection's welcome (plain, and with since) cannot be built: that connection is closed.
    const plain = new TestClient(connectUrl(srv.url, { room: "r", nick: "newbie" }));
    const since = new TestClient(connectUrl(srv.url, { room: "r", nick: "returner", since: 1 }));
    expect([await plain.closing(), await since.closing()]).toEqual([1011, 1011]);
    // So is a join whose welcome cannot be built, here with since (after()).
    c.send({ type: "join", room: "r", since: 0 });
    expect(await c.closing()).toBe(1011);

    store.readsFail = false;
    await a.post("still", 1);
    await sentinel(a, b);
    expect(b.chats().map((m) => m.seq)).toEqual(range(1, 5));
    expect(unexpected(b)).toEqual([]);
    expect(await who(b)).toEqual(["alice", "bob"]);
    a.send({ type: "history", limit: 10 });
    expect((await a.next("history")).messages.map((m) => m.seq)).toEqual(range(1, 5));
    expect((await connect(srv.url, { room: "r", nick: "newbie" })).welcome.lastSeq).toBe(5);
  });
});

describe("lastSeq that throws when a room is first used", () => {
  it("closes a connection to the new room with 1011, refuses a join to it, and leaves the joiner where it was", async () => {
    const store = new FaultyStore();
    const srv = startTestServer({}, { store });
    const a = await connect(srv.url, { room: "r", nick: "alice" });
    const b = await connect(srv.url, { room: "r", nick: "bob" });
    await a.post("m", 2);

    store.lastSeqFails = true;
    const fresh = new TestClient(connectUrl(srv.url, { room: "fresh", nick: "newbie" }));
    expect(await fresh.closing()).toBe(1011);
    a.send({ type: "join", room: "fresh2" });
    expect((await a.next("error")).code).toBe("internal");
    // alice is still in r, with everyone: she hears and is heard, and nobody saw her leave.
    expect(await who(b)).toEqual(["alice", "bob"]);
    await sentinel(b, a);
    await sentinel(a, b);
    expect(unexpected(b)).toEqual([]);
    expect(b.all("presence").flatMap((p) => p.events)).toEqual([]);
    await a.post("still", 1);

    store.lastSeqFails = false;
    expect((await connect(srv.url, { room: "fresh", nick: "newbie" })).welcome.room).toBe("fresh");
    a.send({ type: "join", room: "fresh2" });
    expect((await a.next("welcome")).room).toBe("fresh2");
    expect(srv.hub.connectionCount).toBe(3);
  });
});

describe("SQLite really full, then read-only", () => {
  it("acks only what it stored, loses no acknowledged message, and recovers when space comes back", async () => {
    const dbPath = join(tmp, "full.db");
    const store = new TightSqliteStore(dbPath);
    const srv = startTestServer({ RATE_LIMIT: "0" }, { store });
    const a = await connect(srv.url, { room: "r", nick: "alice" });
    const b = await connect(srv.url, { room: "r", nick: "bob" });
    await a.post("warm", 2);

    const pages = (store.pragma("page_count") as { page_count: number }).page_count;
    store.pragma(`max_page_count = ${pages + 6}`);
    const text = "z".repeat(3000); // most of a page each: the database fills within a few messages
    const outcome = new Map<string, "ack" | "internal">();
    for (let i = 1; i <= 30; i++) {
      const id = `fill-${i}`;
      a.send({ type: "chat", text: `${id} ${text}`, id });
      const answered = (m: { type: string; id?: string }) =>
        (m.type === "ack" || m.type === "error") && m.id === id;
      await a.waitUntil((c) => c.received.some(answered), `an answer to ${id}`);
      const answer = a.received.find(answered);
      outcome.set(id, answer?.type === "ack" ? "ack" : "internal");
      if (answer?.type === "error") expect(answer.code).toBe("internal");
    }
    const failed = [...outcome].filter(([, o]) => o === "internal").map(([id]) => id);
    const acked = a.all("ack");
    expect(failed.length).toBeGreaterThan(10);
    expect(acked.length).toBeGreaterThan(3); // the 2 warm-up messages and at least one before it filled

    // Space again, but read-only (a real SQLITE_READONLY from the connection): still no ack.
    store.pragma("max_page_count = 1000000");
    store.pragma("query_only = ON");
    a.send({ type: "chat", text: "read-only", id: "ro" });
    expect(await a.waitFor("error", (e) => e.id === "ro")).toMatchObject({ code: "internal" });

    // Writable again: everything that failed goes through when sent again, continuing the sequence.
    store.pragma("query_only = OFF");
    for (const id of [...failed, "ro"]) a.send({ type: "chat", text: `${id} again`, id });
    await a.waitFor("ack", (k) => k.id === "ro", 5000);
    const allAcks = a.all("ack");
    expect(allAcks.map((k) => k.seq).sort((x, y) => x - y)).toEqual(range(1, allAcks.length));
    await sentinel(a, b);
    expect(b.chats().map((m) => m.seq)).toEqual(range(1, allAcks.length + 1));
    console.log(
      `sqlite full: ${acked.length - 2} of 30 acked before the database was full, ${failed.length} refused ` +
        `with internal, all ${allAcks.length} acked after recovery`,
    );
    await stopTestServer(srv);

    // Every acknowledged message is in the file, with the seq its ack gave.
    const reopened = new SqliteStore(dbPath);
    const stored = reopened.before("r", Number.MAX_SAFE_INTEGER, 200).messages;
    reopened.close();
    const idAt = new Map(stored.map((m) => [m.seq, m.text.split(" ")[0]]));
    expect(allAcks.filter((k) => idAt.get(k.seq) !== k.id)).toEqual([]);
    expect(stored.map((m) => m.seq)).toEqual(range(1, stored.length));
  }, 20_000);
});

describe("SIGTERM under load", () => {
  it("closes every client with 1001, exits 0, and every acknowledged message is there after a restart", async () => {
    const dbPath = join(tmp, "sigterm.db");
    const server = await spawnServer({ DB_PATH: dbPath, RATE_LIMIT: "0" });
    const rooms = ["alpha", "beta"];
    const clients: TestClient[] = [];
    for (const room of rooms) {
      for (let i = 0; i < 5; i++) clients.push(await connect(server.url, { room, nick: `${room}${i}` }));
    }
    const sent = new Set<string>();
    let writing = true;
    const writers = clients.map(async (c, n) => {
      for (let i = 1; writing && c.closeCode === undefined; i++) {
        const id = `w${n}-${i}`;
        sent.add(id);
        c.send({ type: "chat", text: id, id });
        if (i % 5 === 0) await sleep(2);
      }
    });
    await Promise.all(clients.map((c) => c.waitUntil((x) => x.count("ack") >= 150, "150 acks", 10_000)));
    const t0 = performance.now();
    server.proc.kill("SIGTERM");
    const codes = await Promise.all(clients.map((c) => c.closing(5000)));
    writing = false;
    await Promise.all(writers);
    const exit = await server.proc.exited;
    const stopMs = performance.now() - t0;
    expect(codes).toEqual(clients.map(() => 1001));
    expect({ exit, output: exit === 0 ? "" : server.output.join("") }).toEqual({ exit: 0, output: "" });

    const restarted = await spawnServer({ DB_PATH: dbPath });
    let ackedTotal = 0;
    for (const room of rooms) {
      const messages: ChatMessage[] = [];
      let before = "";
      for (;;) {
        const res = await fetch(new URL(`/api/rooms/${room}/messages?limit=200${before}`, restarted.url));
        const page = (await res.json()) as { messages: ChatMessage[]; hasMore: boolean };
        messages.unshift(...page.messages);
        if (!page.hasMore) break;
        before = `&before=${page.messages[0]?.seq}`;
      }
      expect(messages.map((m) => m.seq)).toEqual(range(1, messages.length));
      expect(messages.filter((m) => !sent.has(m.text))).toEqual([]);
      const seqOf = new Map(messages.map((m) => [m.text, m.seq]));
      const acks = clients.filter((c) => c.welcome.room === room).flatMap((c) => c.all("ack"));
      ackedTotal += acks.length;
      expect(acks.filter((k) => seqOf.get(k.id) !== k.seq)).toEqual([]);
    }
    console.log(
      `sigterm: ${clients.length} clients, ${sent.size} messages sent, ${ackedTotal} acked before the stop, ` +
        `all there after restart; every client closed with 1001; exit 0 after ${stopMs.toFixed(0)} ms`,
    );
    restarted.proc.kill("SIGTERM");
    expect(await restarted.proc.exited).toBe(0);
  }, 30_000);
});
