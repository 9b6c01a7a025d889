/**
 * Redis started again without its data: every room's seqs restart at 1. Its epoch changes with it, a
 * process following the room notices the log started over and sends its members back (1011), and
 * they meet the new epoch in their welcome, so clients start their view over instead of mixing seqs.
 */
import { afterEach, describe, expect, it } from "bun:test";
import { RedisClient } from "bun";
import { closeAllClients, connect } from "../support/test-client";
import { startTestServerOn, stopAllServers } from "../support/test-server";
import { privateRedis } from "./support/redis-server";

const redis = privateRedis();
afterEach(async () => {
  await closeAllClients();
  await stopAllServers();
});

describe.skipIf(!redis.available)("a room whose Redis lost its data", () => {
  it("gets a new epoch, and its members here are sent back to meet it", async () => {
    const url = redis.url();
    const srv = startTestServerOn({ kind: "redis", url });
    const ann = await connect(srv.url, { room: "lost", nick: "ann" });
    await ann.post("old", 3);
    const before = ann.welcome.epoch;
    expect(before).toBeDefined();
    const admin = new RedisClient(url);
    await admin.send("FLUSHALL", []);
    admin.close();
    // Someone arrives after the loss. The process notices the room's log started over (its join is
    // entry 1 again) and sends every member back, the newcomer too; coming back, they meet the room
    // as Redis has it now: seq from 0, under another epoch.
    // Its process may welcome it from the old replica in the moment before it has read the new log:
    // either way the connection is closed with 1011 once it has.
    const first = await connect(srv.url, { room: "lost", nick: "bob" }).catch((err: Error) => err);
    if (first instanceof Error) expect(first.message).toContain("1011");
    else expect(await first.closing()).toBe(1011);
    expect(await ann.closing()).toBe(1011);
    const bob = await connect(srv.url, { room: "lost", nick: "bob" });
    expect(bob.welcome.lastSeq).toBe(0);
    expect(bob.welcome.epoch).toBeDefined();
    expect(bob.welcome.epoch).not.toBe(before);
    const again = await connect(srv.url, { room: "lost", nick: "ann", since: 3 });
    expect(again.welcome.epoch).toBe(bob.welcome.epoch as string);
  });
});

describe.skipIf(!redis.available)(
  "a room whose newest writes Redis lost (a failover to a replica behind)",
  () => {
    it("gets a new epoch, so the seqs some clients saw are never silently reused", async () => {
      const url = redis.url();
      const srv = startTestServerOn({ kind: "redis", url }, {}, { redisPrefix: "behind:" });
      const ann = await connect(srv.url, { room: "behind", nick: "ann" });
      const bob = await connect(srv.url, { room: "behind", nick: "bob" });
      await ann.post("kept", 2);
      await ann.post("lost", 1);
      await bob.waitFor("chat", (m) => m.seq === 3);
      const before = ann.welcome.epoch;
      // What a replica that never got the last chat holds: its seq, entry number, post and log entry gone.
      const admin = new RedisClient(url);
      const meta = "behind:room:behind:meta";
      await admin.send("HINCRBY", [meta, "seq", "-1"]);
      await admin.send("HINCRBY", [meta, "n", "-1"]);
      await admin.send("ZREMRANGEBYSCORE", ["behind:room:behind:msgs", "3", "3"]);
      const [last] = (await admin.send("XREVRANGE", [
        "behind:room:behind:log",
        "+",
        "-",
        "COUNT",
        "1",
      ])) as Array<[string, string[]]>;
      await admin.send("XDEL", ["behind:room:behind:log", (last as [string, string[]])[0]]);
      admin.close();
      // The next chat takes seq 3 again and the entry number the process saw already: it notices.
      bob.send({ type: "chat", text: "after", id: "a1" });
      expect(await ann.closing()).toBe(1011);
      const back = await connect(srv.url, { room: "behind", nick: "ann", since: 3 });
      expect(back.welcome.epoch).toBeDefined();
      expect(back.welcome.epoch).not.toBe(before);
      // Under the new epoch the history is what Redis kept, and the lost chat is nowhere.
      const carl = await connect(srv.url, { room: "behind", nick: "carl" });
      expect(carl.welcome.epoch).toBe(back.welcome.epoch as string);
      const texts = carl.welcome.history.map((m) => m.text);
      expect(texts.slice(0, 2)).toEqual(["kept-1", "kept-2"]);
      expect(texts).not.toContain("lost-1");
    });
  },
);
