/**
 * Guarantee 6 with real processes: three `server.ts` children sharing one redis-server behave as one
 * chat server (broadcast in seq order, presence, nick races, shared history, resume anywhere).
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import type { ServerProcess } from "../support/server-process";
import { killAllServerProcesses } from "../support/server-process";
import { closeAllClients, connect, type TestClient } from "../support/test-client";
import { eventually } from "../support/timing";
import { allMessages, roomsFrom, spawnCluster, until, userList } from "./support/cluster";
import { RedisProcess, redisAvailable } from "./support/redis-server";

const available = redisAvailable();
let redis: RedisProcess;
let procs: ServerProcess[] = [];

beforeAll(async () => {
  if (!available) return;
  redis = await RedisProcess.start({ appendonly: true });
  procs = await spawnCluster(redis, 3);
});

afterAll(async () => {
  await closeAllClients();
  await killAllServerProcesses();
  await redis?.stop();
});

const url = (i: number) => (procs[i % procs.length] as ServerProcess).url;

describe.skipIf(!available)("three processes on one Redis", () => {
  it("broadcasts every message to every member on every process, once, in one gapless seq order per room", async () => {
    const rooms = ["bcast-a", "bcast-b"];
    const clients: TestClient[] = [];
    for (const room of rooms) {
      for (let i = 0; i < 3; i++) clients.push(await connect(url(i), { room, nick: `w${i}` }));
    }
    const perClient = 40;
    const acks = await Promise.all(clients.map((c, i) => c.post(`m${i}`, perClient)));
    for (const room of rooms) {
      const members = clients.filter((c) => c.welcome.room === room);
      const total = perClient * members.length;
      for (const c of members) {
        await c.waitUntil((x) => x.chats(room).length >= total, `${total} chats in ${room}`);
      }
      const reference = (members[0] as TestClient).chats(room);
      expect(reference.map((m) => m.seq)).toEqual(Array.from({ length: total }, (_, k) => k + 1));
      for (const c of members) expect(c.chats(room)).toEqual(reference);
      // Each ack names the seq its message got, as everyone saw it.
      const bySeq = new Map(reference.map((m) => [m.seq, m.text]));
      for (const [i, c] of clients.entries()) {
        if (c.welcome.room !== room) continue;
        for (const a of acks[i] ?? []) expect(bySeq.get(a.seq)).toBe(a.id);
      }
    }
  });

  it("shares presence: joins, renames and leaves on one process reach the lists on the others", async () => {
    const ann = await connect(url(0), { room: "presence", nick: "ann" });
    const bob = await connect(url(1), { room: "presence", nick: "bob" });
    expect(bob.welcome.users).toEqual(["ann", "bob"]);
    await ann.next("presence", (p) => p.events.some((e) => e.event === "join" && e.nick === "bob"));
    const cat = await connect(url(2), { room: "presence", nick: "cat" });
    bob.send({ type: "nick", nick: "bobby" });
    await ann.next("presence", (p) => p.events.some((e) => e.event === "nick" && e.nick === "bobby"));
    await cat.next("presence", (p) => p.events.some((e) => e.event === "nick" && e.nick === "bobby"));
    await bob.close();
    await ann.next("presence", (p) => p.events.some((e) => e.event === "leave" && e.nick === "bobby"));
    await cat.next("presence", (p) => p.events.some((e) => e.event === "leave" && e.nick === "bobby"));
    expect(userList(ann)).toEqual(["ann", "cat"]);
    expect(userList(cat)).toEqual(["ann", "cat"]);
    cat.send({ type: "who" });
    expect((await cat.next("users")).users).toEqual(["ann", "cat"]);
    const rooms = (await (await fetch(new URL("/api/rooms", url(2)))).json()) as Array<{
      room: string;
      users: number;
    }>;
    expect(rooms.find((r) => r.room === "presence")?.users).toBe(2);
  });

  it("lists every room with users on any process from every process, counted across processes, busiest first", async () => {
    // dir-a: two users on process 0 and one on process 1; dir-b: one user, on process 1 only.
    await connect(url(0), { room: "dir-a" });
    await connect(url(0), { room: "dir-a" });
    await connect(url(1), { room: "dir-a" });
    const lone = await connect(url(1), { room: "dir-b" });
    const ours = async (i: number) => (await roomsFrom(url(i))).filter((r) => r.room.startsWith("dir-"));
    for (const from of [0, 1, 2]) {
      expect({ from, rooms: await ours(from) }).toEqual({
        from,
        rooms: [
          { room: "dir-a", users: 3 },
          { room: "dir-b", users: 1 },
        ],
      });
      const all = await roomsFrom(url(from));
      expect(all).toEqual([...all].sort((a, b) => b.users - a.users || (a.room < b.room ? -1 : 1)));
    }
    // Its last user gone, dir-b leaves every process's list, also those it never had a member on.
    await lone.close();
    await until(async () => (await ours(0)).length === 1, "dir-b to leave the list");
    for (const from of [0, 1, 2]) {
      expect({ from, rooms: await ours(from) }).toEqual({ from, rooms: [{ room: "dir-a", users: 3 }] });
    }
  });

  it("gives a nickname claimed at once on every process to exactly one connection", async () => {
    const racers = await Promise.all(
      Array.from({ length: 24 }, (_, i) => connect(url(i), { room: "race", nick: "racer" })),
    );
    const nicks = racers.map((c) => c.welcome.nick);
    expect(nicks.filter((n) => n === "racer")).toHaveLength(1);
    expect(new Set(nicks.map((n) => n.toLowerCase())).size).toBe(racers.length);
    // And renames: all ask for one name at the same moment; one presence event, the rest nick_taken.
    for (const c of racers) c.send({ type: "nick", nick: "Crown" });
    const outcomes = await Promise.all(
      racers.map((c) =>
        Promise.race([
          c.waitFor("error", (e) => e.code === "nick_taken").then(() => "taken"),
          c
            .waitFor("presence", (p) => p.events.some((e) => e.event === "nick" && e.nick === "Crown"))
            .then((p) =>
              p.events.some((e) => e.event === "nick" && e.from === c.welcome.nick) ? "won" : "saw",
            ),
        ]),
      ),
    );
    expect(outcomes.filter((o) => o === "won")).toHaveLength(1);
    for (const c of racers) await c.waitUntil((x) => userList(x).includes("Crown"), "the winner in the list");
    for (const c of racers) expect(userList(c).filter((n) => n.toLowerCase() === "crown")).toHaveLength(1);
  });

  it("answers history, since and the REST API the same from every process", async () => {
    const writer = await connect(url(0), { room: "history" });
    await writer.post("h", 120);
    const pages = await Promise.all([0, 1, 2].map((i) => allMessages(url(i), "history")));
    expect(pages[0]?.map((m) => m.seq)).toEqual(Array.from({ length: 120 }, (_, k) => k + 1));
    expect(pages[1]).toEqual(pages[0] as never);
    expect(pages[2]).toEqual(pages[0] as never);
    const reader = await connect(url(1), { room: "history", since: 100 });
    expect(reader.welcome.history.map((m) => m.seq)).toEqual(Array.from({ length: 20 }, (_, k) => k + 101));
    expect(reader.welcome.lastSeq).toBe(120);
    const fresh = await connect(url(2), { room: "history" });
    expect(fresh.welcome.history.map((m) => m.seq)).toEqual(Array.from({ length: 50 }, (_, k) => k + 71));
    expect(fresh.welcome.historyTruncated).toBe(true);
    fresh.send({ type: "history", before: 71, limit: 30 });
    const older = await fresh.next("history");
    expect(older.messages.map((m) => m.seq)).toEqual(Array.from({ length: 30 }, (_, k) => k + 41));
    expect(older.hasMore).toBe(true);
  });

  it("resumes a session on another process, taking over a stale connection with 4001", async () => {
    const watcher = await connect(url(2), { room: "resume", nick: "watcher" });
    const first = await connect(url(0), { room: "resume", nick: "rita" });
    await first.post("r", 3);
    const token = first.welcome.resumeToken;
    // The stale connection is still open on process 0; the resumed one arrives on process 1.
    const second = await connect(url(1), { room: "resume", resume: token, since: 0 });
    expect(second.welcome.nick).toBe("rita");
    expect(await first.closing()).toBe(4001);
    // A retried id is not stored twice, whichever process it comes through.
    second.send({ type: "chat", text: "r-3", id: "r-3" });
    expect((await second.next("ack", (a) => a.id === "r-3")).seq).toBe(3);
    second.send({ type: "chat", text: "after", id: "r-4" });
    await watcher.waitFor("chat", (m) => m.text === "after");
    expect(watcher.chats().map((m) => m.seq)).toEqual([1, 2, 3, 4]);
    // Silently: the watcher saw rita join once and never leave.
    const events = watcher.all("presence").flatMap((p) => p.events);
    expect(events.filter((e) => "nick" in e && e.nick === "rita").map((e) => e.event)).toEqual(["join"]);
    // After an ended session: a third process, same nick, one join event.
    await second.close();
    await watcher.next("presence", (p) => p.events.some((e) => e.event === "leave" && e.nick === "rita"));
    // The token a resume used is spent: the one that resume handed out comes back.
    const third = await connect(url(2), { room: "resume", resume: second.welcome.resumeToken });
    expect(third.welcome.nick).toBe("rita");
    await eventually(() => userList(watcher).includes("rita"), "rita back in the watcher's list");
  });
});
