/**
 * The race CI found once: a connection renamed, then closed before the rename's reply was processed.
 * The core learns the new nickname only from that reply, so the leave goes out under the old one;
 * it must still remove the renamed user, from Redis and from every list.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { HubProcess, listOf, RedisView, send, settle } from "./support/hubs";
import { RedisProcess, redisAvailable } from "./support/redis-server";

const available = redisAvailable();
let redis: RedisProcess;
let runs = 0;

beforeAll(async () => {
  if (available) redis = await RedisProcess.start();
});

afterAll(async () => {
  await redis?.stop();
});

describe.skipIf(!available)("a leave right behind a rename", () => {
  it("removes the renamed user when the socket closes before the rename's reply arrived", async () => {
    const prefix = `race${++runs}:`;
    const [a, b] = [new HubProcess(redis.url, prefix), new HubProcess(redis.url, prefix)];
    const view = new RedisView(redis.url, prefix);
    await Promise.all([a.hub.ready, b.hub.ready]);
    try {
      const bob = a.open("presence", "bob");
      const ann = b.open("presence", "ann");
      await settle(a.hub, b.hub);
      expect(listOf(ann)).toEqual(["ann", "bob"]);

      // Rename, then the socket goes, in the same turn: nothing awaited in between.
      send(bob, { type: "nick", nick: "bobby" });
      bob.peer.close(1000);
      await settle(a.hub, b.hub);

      expect(await view.nicks("presence")).toEqual(["ann"]);
      expect(await view.rooms()).toEqual({ presence: 1 });
      expect(listOf(ann)).toEqual(["ann"]);
      send(ann, { type: "who" });
      expect(ann.peer.inbox.at(-1)).toEqual({ type: "users", room: "presence", users: ["ann"] });
      // bob's session ended: it expires like any other.
      expect(await view.sessionTtl(bob.conn.session)).toBeGreaterThan(0);
    } finally {
      for (const p of [a, b]) p.hub.shutdown();
      await Promise.all([a.hub.stop(), b.hub.stop()]);
      view.close();
    }
  });
});
