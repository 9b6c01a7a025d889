/**
 * A process cut off from Redis may find, when it reconciles, that someone else took one of its
 * users' nicknames meanwhile: that user alone is sent back (1011, to come back with `since`); the
 * others in the room stay connected.
 */
import { describe, expect, it } from "bun:test";
import { RedisClient } from "bun";
import { nickKey } from "../../protocol";
import { eventually } from "../support/timing";
import { HubProcess, settle } from "./support/hubs";
import { privateRedis } from "./support/redis-server";

const redis = privateRedis();

describe.skipIf(!redis.available)("a nickname taken while its process was cut off", () => {
  it("sends back only the user who lost it, not the whole room", async () => {
    const prefix = "taken:";
    const a = new HubProcess(redis.url(), prefix, { reconcileIntervalMs: 200 });
    const b = new HubProcess(redis.url(), prefix, { reconcileIntervalMs: 60_000 });
    await Promise.all([a.hub.ready, b.hub.ready]);
    try {
      const ann = a.open("taken", "ann");
      const cat = a.open("taken", "cat");
      await settle(a.hub, b.hub);
      // What a sweep during a cut-off and a newcomer elsewhere leave behind: ann's entry is b's now.
      const raw = new RedisClient(redis.url());
      await raw.send("HSET", [
        `${prefix}room:taken:users`,
        nickKey("ann"),
        `${b.engine.procId}|other|othersess|ann`,
      ]);
      raw.close();
      await eventually(() => ann.peer.closedWith !== undefined, "ann to be sent back", 3000);
      expect(ann.peer.closedWith).toBe(1011);
      await Bun.sleep(400);
      expect(cat.peer.closedWith).toBeUndefined();
    } finally {
      for (const p of [a, b]) p.hub.shutdown();
      await Promise.all([a.hub.stop(), b.hub.stop()]);
    }
  });
});
