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
