/**
 * A hung Redis (SIGSTOP: its connections stay up, nothing is answered) is an outage, not a wait:
 * chats, new connections and /healthz answer within the command timeout, no process drops its
 * clients when Redis comes back, and once things settle no one who left or failed to enter during
 * the freeze is left in anyone's list, and no ended session is left without expiry.
 *
 * FREEZE_SECONDS (default 4) sets how long Redis stays frozen, e.g. 20 to measure the long case.
 */
import { afterAll, afterEach, describe, expect, it } from "bun:test";
import { killAllServerProcesses, type ServerProcess } from "../support/server-process";
import { closeAllClients, connect, connectUrl, TestClient } from "../support/test-client";
import { eventually, sleep } from "../support/timing";
import { allMessages, roomsFrom, spawnCluster, until, userList } from "./support/cluster";
import { HubProcess, listOf, RedisView, send, settle } from "./support/hubs";
import { RedisProcess, redisAvailable } from "./support/redis-server";

const available = redisAvailable();
const FREEZE_MS = Number(process.env.FREEZE_SECONDS ?? 4) * 1000;
const TIMEOUT_MS = 500;
const redises: RedisProcess[] = [];

afterEach(async () => {
  await closeAllClients();
  await killAllServerProcesses();
});

afterAll(async () => {
  await Promise.all(redises.map((r) => r.stop()));
});

/** Milliseconds `work` took. */
async function timed<T>(work: () => Promise<T>): Promise<[T, number]> {
  const start = Date.now();
  const value = await work();
  return [value, Date.now() - start];
}

describe.skipIf(!available)("Redis frozen with SIGSTOP", () => {
  it("fails fast during the freeze and leaves no ghost, no dropped client and no immortal session after it", async () => {
    const redis = await RedisProcess.start({ appendonly: true });
    redises.push(redis);
    const view = new RedisView(redis.url, "chat:");
    const procs = await spawnCluster(redis, 2, { REDIS_COMMAND_TIMEOUT_MS: String(TIMEOUT_MS) });
    const [p0, p1] = procs as [ServerProcess, ServerProcess];
    const obs = await connect(p0.url, { room: "freeze", nick: "obs" });
    const stay = await connect(p1.url, { room: "freeze", nick: "stay" });
    const leaver = await connect(p1.url, { room: "freeze", nick: "leaver" });
    await stay.post("s", 3);
    await eventually(() => userList(obs).length === 3, "everyone in obs's list");

    redis.pause();
    const frozenAt = Date.now();
    // All at once, so each is sent before the link knows Redis hangs: each times out, and each will
    // still run in Redis when it wakes. A chat gets `internal` for its id.
    const chat = timed(async () => {
      stay.send({ type: "chat", text: "during", id: "during" });
      return stay.next("error", (e) => e.id === "during", TIMEOUT_MS + 2500);
    });
    // A new connection is closed with 1011 ("try again").
    const enter = timed(async () => {
      const late = new TestClient(connectUrl(p0.url, { room: "freeze", nick: "ghost" }));
      return Promise.race([late.closed, sleep(TIMEOUT_MS + 2500).then(() => -1)]);
    });
    // A user leaves.
    const leaving = leaver.close();
    // /healthz answers 500 on every process.
    const health = procs.map((p) =>
      timed(async () => {
        const res = await fetch(new URL("/healthz", p.url), {
          signal: AbortSignal.timeout(TIMEOUT_MS + 2500),
        });
        return res.status;
      }),
    );
    const [, chatMs] = await chat;
    const [code, enterMs] = await enter;
    const healthz = await Promise.all(health);
    await leaving;
    // Once the link knows Redis hangs, what comes next fails at once: another new connection.
    const [code2, enter2Ms] = await timed(async () => {
      const late = new TestClient(connectUrl(p1.url, { room: "freeze", nick: "ghost2" }));
      return Promise.race([late.closed, sleep(TIMEOUT_MS + 2500).then(() => -1)]);
    });
    await sleep(Math.max(0, FREEZE_MS - (Date.now() - frozenAt)));
    redis.unpause();
    const thawedAt = Date.now();
    console.log(
      `frozen ${FREEZE_MS} ms: chat error after ${chatMs} ms, /healthz ${healthz.map(([s, ms]) => `${s} after ${ms} ms`).join(", ")}, ` +
        `new connections closed with ${code} after ${enterMs} ms, then ${code2} after ${enter2Ms} ms`,
    );
    expect([code, code2]).toEqual([1011, 1011]);
    expect(healthz.map(([s]) => s)).toEqual([500, 500]);
    for (const ms of [chatMs, ...healthz.map(([, ms]) => ms), enterMs, enter2Ms]) {
      expect(ms).toBeLessThan(TIMEOUT_MS + 1500);
    }

    // Settled: only obs and stay, in Redis, in every list and in the room count.
    await until(
      async () => JSON.stringify(await view.nicks("freeze")) === '["obs","stay"]',
      "the users hash to hold obs and stay only",
      10_000,
    );
    const settledMs = Date.now() - thawedAt;
    await eventually(() => userList(obs).join() === "obs,stay", "obs's list to settle", 5000);
    await eventually(() => userList(stay).join() === "obs,stay", "stay's list to settle", 5000);
    for (const c of [obs, stay]) {
      c.send({ type: "who" });
      expect((await c.next("users")).users).toEqual(["obs", "stay"]);
    }
    for (const p of procs) {
      expect((await roomsFrom(p.url)).find((r) => r.room === "freeze")?.users).toBe(2);
      expect((await fetch(new URL("/healthz", p.url))).status).toBe(200);
    }
    // Nobody was dropped, nor shown leaving: no process was presumed dead for Redis's silence.
    expect([obs.closeCode, stay.closeCode]).toEqual([undefined, undefined]);
    const othersLeaving = (c: TestClient) =>
      c
        .all("presence")
        .flatMap((p) => p.events)
        .filter((e) => e.event === "leave" && e.nick !== "ghost" && e.nick !== "leaver");
    expect({ obs: othersLeaving(obs), stay: othersLeaving(stay) }).toEqual({ obs: [], stay: [] });
    // No late ack for the chat that failed; its retry is acked once, and it is stored once.
    expect(stay.all("ack").filter((a) => a.id === "during")).toEqual([]);
    stay.send({ type: "chat", text: "during", id: "during" });
    const ack = await stay.next("ack", (a) => a.id === "during");
    const stored = (await allMessages(p0.url, "freeze")).filter((m) => m.text === "during");
    expect(stored.map((m) => m.seq)).toEqual([ack.seq]);
    // A session without expiry is one held in a room: the leaver's and the ghost's expire.
    const held = new Set(Object.values(await view.users("freeze")).map((v) => v.split("|")[2]));
    for (const [token, ttl] of await view.sessions()) {
      expect({ token, held: held.has(token), expires: ttl > 0 }).toEqual({
        token,
        held: held.has(token),
        expires: !held.has(token),
      });
    }
    console.log(`settled ${settledMs} ms after Redis came back`);
    view.close();
  }, 40_000);

  it("adopts a rename that timed out and then ran: Redis, every list and the connection agree on the new name", async () => {
    const redis = await RedisProcess.start();
    redises.push(redis);
    const prefix = "rename:";
    const view = new RedisView(redis.url, prefix);
    const options = { commandTimeoutMs: 200, reconcileIntervalMs: 60_000 };
    const [a, b] = [new HubProcess(redis.url, prefix, options), new HubProcess(redis.url, prefix, options)];
    await Promise.all([a.hub.ready, b.hub.ready]);
    try {
      const bob = a.open("r", "bob");
      const ann = b.open("r", "ann");
      await settle(a.hub, b.hub);
      redis.pause();
      send(bob, { type: "nick", nick: "bobby" });
      await eventually(() => bob.peer.inbox.some((m) => m.type === "error"), "the rename's error", 3000);
      expect(bob.peer.inbox.at(-1)).toMatchObject({ type: "error", code: "internal" });
      expect(bob.conn.nick).toBe("bob");
      redis.unpause();
      await eventually(() => bob.conn.nick === "bobby", "the late rename to be adopted", 3000);
      await settle(a.hub, b.hub);
      expect(await view.nicks("r")).toEqual(["ann", "bobby"]);
      expect([listOf(ann), listOf(bob)]).toEqual([
        ["ann", "bobby"],
        ["ann", "bobby"],
      ]);
      send(bob, { type: "chat", text: "hi", id: "h1" });
      await settle(a.hub, b.hub);
      expect(ann.peer.inbox.at(-1)).toMatchObject({ type: "chat", nick: "bobby", text: "hi" });
      bob.peer.close(1000);
      await settle(a.hub, b.hub);
      expect(await view.nicks("r")).toEqual(["ann"]);
      expect(listOf(ann)).toEqual(["ann"]);
    } finally {
      redis.unpause();
      for (const p of [a, b]) p.hub.shutdown();
      await Promise.all([a.hub.stop(), b.hub.stop()]);
      view.close();
    }
  });
});
