/**
 * Leaves that never landed: a process reconciles its users with Redis after reconnecting (and
 * periodically), removing every users entry it owns whose connection is no longer open there, so
 * nobody stays in `who` for ever, `/api/rooms` counts right and the nickname is free again.
 *
 * The fast test plants the entry a leave given up long ago would have left behind (one owned by a
 * live process, for a connection it no longer has). REDIS_LONG_TESTS=1 also runs the real thing:
 * Redis down for OUTAGE_SECONDS (default 75) while a user leaves.
 */
import { afterAll, afterEach, describe, expect, it } from "bun:test";
import { RedisClient } from "bun";
import { killAllServerProcesses, type ServerProcess } from "../support/server-process";
import { closeAllClients, connect } from "../support/test-client";
import { eventually, sleep } from "../support/timing";
import { roomsFrom, spawnCluster, until, userList } from "./support/cluster";
import { HubProcess, listOf, RedisView, settle } from "./support/hubs";
import { RedisProcess, redisAvailable } from "./support/redis-server";

const available = redisAvailable();
const LONG = process.env.REDIS_LONG_TESTS === "1";
const OUTAGE_MS = Number(process.env.OUTAGE_SECONDS ?? 75) * 1000;
const redises: RedisProcess[] = [];

async function freshRedis(): Promise<RedisProcess> {
  const redis = await RedisProcess.start({ appendonly: true });
  redises.push(redis);
  return redis;
}

afterEach(async () => {
  await closeAllClients();
  await killAllServerProcesses();
});

afterAll(async () => {
  await Promise.all(redises.map((r) => r.stop()));
});

/** What a new client of `room` on `base` is told: its nickname and the room's users. */
async function newcomer(base: URL, room: string, nick: string): Promise<{ nick: string; users: string[] }> {
  const c = await connect(base, { room, nick });
  const seen = { nick: c.welcome.nick, users: c.welcome.users };
  await c.close();
  return seen;
}

describe.skipIf(!available)("a leave that never landed", () => {
  it("is made good once Redis is back: the process removes the users entries it owns for connections it no longer has", async () => {
    const redis = await freshRedis();
    const view = new RedisView(redis.url, "chat:");
    const procs = await spawnCluster(redis, 2);
    const [p0, p1] = procs as [ServerProcess, ServerProcess];
    const obs = await connect(p0.url, { room: "lost", nick: "obs" });
    const gone = await connect(p1.url, { room: "lost", nick: "gone" });
    await eventually(() => userList(obs).includes("gone"), "gone in obs's list");
    // What a given-up leave leaves behind: an entry owned by p1 for a connection p1 no longer has,
    // and its session, never set to expire.
    const [proc] = ((await view.users("lost")).gone as string).split("|");
    const raw = new RedisClient(redis.url);
    await raw.send("HSET", ["chat:room:lost:users", "ghost", `${proc}|nosuchconn|ghostsession|ghost`]);
    await raw.send("HSET", ["chat:sess:ghostsession", "room", "lost", "nick", "ghost", "key", "ghost"]);
    await raw.send("ZADD", ["chat:rooms", "3", "lost"]);
    raw.close();

    // Redis goes away for a moment; gone leaves meanwhile.
    await redis.kill();
    await gone.close();
    await sleep(1500);
    await redis.resume();

    await until(
      async () => JSON.stringify(await view.nicks("lost")) === '["obs"]',
      "the users hash to hold obs only",
      10_000,
    );
    await eventually(() => userList(obs).join() === "obs", "obs's list to hold obs only");
    for (const p of procs) expect((await roomsFrom(p.url)).find((r) => r.room === "lost")?.users).toBe(1);
    expect(await newcomer(p0.url, "lost", "ghost")).toEqual({ nick: "ghost", users: ["ghost", "obs"] });
    expect(await newcomer(p1.url, "lost", "gone")).toEqual({ nick: "gone", users: ["gone", "obs"] });
    expect(await view.sessionTtl("ghostsession")).toBeGreaterThan(0);
    expect(obs.closeCode).toBeUndefined();
    view.close();
  }, 30_000);
});

describe.skipIf(!available)("reconciling periodically", () => {
  it("removes an entry its process owns for a connection it does not have, with no outage at all", async () => {
    const redis = await freshRedis();
    const prefix = "periodic:";
    const view = new RedisView(redis.url, prefix);
    const a = new HubProcess(redis.url, prefix, { reconcileIntervalMs: 200 });
    const b = new HubProcess(redis.url, prefix, { reconcileIntervalMs: 60_000 });
    await Promise.all([a.hub.ready, b.hub.ready]);
    try {
      const ann = a.open("tidy", "ann");
      const bob = b.open("tidy", "bob");
      await settle(a.hub, b.hub);
      const raw = new RedisClient(redis.url);
      await raw.send("HSET", [
        `${prefix}room:tidy:users`,
        "ghost",
        `${a.engine.procId}|gone|ghostsess|ghost`,
      ]);
      await raw.send("HSET", [`${prefix}sess:ghostsess`, "room", "tidy", "nick", "ghost", "key", "ghost"]);
      raw.close();
      await until(
        async () => JSON.stringify(await view.nicks("tidy")) === '["ann","bob"]',
        "the ghost to go",
        3000,
      );
      expect(await view.sessionTtl("ghostsess")).toBeGreaterThan(0);
      await settle(a.hub, b.hub);
      // Its leave event reached everyone; the real users were left alone.
      expect([listOf(ann), listOf(bob)]).toEqual([
        ["ann", "bob"],
        ["ann", "bob"],
      ]);
      expect(bob.peer.inbox.filter((m) => m.type === "presence").flatMap((m) => m.events)).toContainEqual({
        event: "leave",
        nick: "ghost",
      });
    } finally {
      for (const p of [a, b]) p.hub.shutdown();
      await Promise.all([a.hub.stop(), b.hub.stop()]);
      view.close();
    }
  });
});

describe.skipIf(!available || !LONG)("Redis down longer than a minute (REDIS_LONG_TESTS=1)", () => {
  it(
    "forgets the user who left during the outage once Redis is back",
    async () => {
      const redis = await freshRedis();
      const view = new RedisView(redis.url, "chat:");
      const procs = await spawnCluster(redis, 2);
      const [p0, p1] = procs as [ServerProcess, ServerProcess];
      const obs = await connect(p0.url, { room: "long", nick: "obs" });
      const bob = await connect(p1.url, { room: "long", nick: "bob" });
      await eventually(() => userList(obs).includes("bob"), "bob in obs's list");
      await redis.kill();
      await bob.close();
      await sleep(OUTAGE_MS);
      await redis.resume();
      const backAt = Date.now();
      await until(
        async () => JSON.stringify(await view.nicks("long")) === '["obs"]',
        "the users hash to hold obs only",
        20_000,
      );
      console.log(`bob's entry gone ${Date.now() - backAt} ms after Redis came back`);
      await eventually(() => userList(obs).join() === "obs", "obs's list to hold obs only");
      for (const p of procs) expect((await roomsFrom(p.url)).find((r) => r.room === "long")?.users).toBe(1);
      expect(await newcomer(p1.url, "long", "bob")).toEqual({ nick: "bob", users: ["bob", "obs"] });
      view.close();
    },
    OUTAGE_MS + 60_000,
  );
});
