/**
 * The Redis link on a Redis Cluster where ioredis alone falls short: a write that waits for a replica
 * (a pipeline of the write and WAIT) while its slot migrates, and once it has moved.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { KeySpace } from "../../server/engines/redis/key-space";
import { RedisLink, runScript } from "../../server/engines/redis/redis-link";
import { RedisCluster, redisClusterAvailable } from "./support/redis-cluster";

const available = redisClusterAvailable();
let cluster: RedisCluster;
let link: RedisLink;

beforeAll(async () => {
  if (!available) return;
  cluster = await RedisCluster.start();
  link = new RedisLink({ cluster: cluster.startupNodes, timeoutMs: 5000 });
  await link.connect();
}, 60_000);

afterAll(async () => {
  link?.close();
  await cluster?.stop();
});

/** A script as the engine runs them: ARGV[1] the partition's prefix, fenced (KeySpace.fence). */
const INCR = "return redis.call('INCR', ARGV[1] .. 'n')";

describe.skipIf(!available)("RedisLink on a cluster, writes that wait for a replica", () => {
  it("waits out its slot's migration, then runs once where the slot went", async () => {
    const prefix = "wc:{mig}:";
    expect(await runScript(link, INCR, [prefix], 1)).toBe(1);
    const slot = await cluster.keySlot(KeySpace.fence(prefix)[0]);
    const from = await cluster.primaryForSlot(slot);
    const to = (await cluster.primaries()).find((p) => p.id !== from.id);
    if (!to) throw new Error("no other primary");
    const migration = await cluster.beginSlotMigration(slot, to.id);
    let finished = false;
    try {
      const write = runScript(link, INCR, [prefix], 1);
      let settled = false;
      write.then(
        () => (settled = true),
        () => (settled = true),
      );
      await Bun.sleep(400);
      // Held back while the slot is half-moved (before: refused at once with ASK).
      expect(settled).toBe(false);
      await migration.finish();
      finished = true;
      expect(await write).toBe(2);
    } finally {
      if (!finished) await migration.finish();
    }
    expect((await cluster.primaryForSlot(slot)).id).toBe(to.id);
    // The client's slot map still names the old owner: MOVED, the slots read again, sent again.
    expect(await runScript(link, INCR, [prefix], 1)).toBe(3);
  }, 30_000);
});
