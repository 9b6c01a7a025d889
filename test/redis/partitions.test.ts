/**
 * The partitioned layout (REDIS_PARTITIONS > 1, and always on a cluster) on one Redis: every key of a
 * room carries its partition's hash tag, and a session copied into another partition by a move does
 * not outlive its use there.
 */
import { afterEach, describe, expect, it } from "bun:test";
import { RedisClient } from "bun";
import { KeySpace } from "../../server/engines/redis/key-space";
import { closeAllClients, connect } from "../support/test-client";
import { startTestServerOn, stopAllServers } from "../support/test-server";
import { until } from "./support/cluster";
import { privateRedis } from "./support/redis-server";

const redis = privateRedis();
afterEach(async () => {
  await closeAllClients();
  await stopAllServers();
});

/** Two room names that land in different partitions of `keys`. */
function roomsApart(keys: KeySpace): [string, string] {
  const first = "alpha";
  for (let i = 0; ; i++) {
    const other = `beta${i}`;
    if (keys.room(other) !== keys.room(first)) return [first, other];
  }
}

describe.skipIf(!redis.available)("rooms over 4 partitions on one Redis", () => {
  it("keeps each room's keys under its partition's tag, and ends a session's copy left behind by a move", async () => {
    const url = redis.url();
    const prefix = "parts:";
    const keys = new KeySpace(prefix, 4, true);
    const [a, b] = roomsApart(keys);
    const srv = startTestServerOn({ kind: "redis", url, partitions: 4 }, {}, { redisPrefix: prefix });
    const ann = await connect(srv.url, { room: a, nick: "ann" });
    await ann.post("m", 2);
    const admin = new RedisClient(url);
    try {
      const all = (await admin.send("KEYS", [`${prefix}*`])) as string[];
      const ofA = all.filter((k) => k.includes(`room:${a}:`));
      expect(ofA.length).toBeGreaterThan(2);
      for (const k of ofA) expect(k.startsWith(keys.room(a))).toBe(true);
      const sid = (ann.welcome.resumeToken as string).split(".")[0] as string;
      const inA = `${keys.room(a)}sess:${sid}`;
      expect(Number(await admin.send("PTTL", [inA]))).toBe(-1);
      ann.send({ type: "join", room: b });
      await ann.next("welcome");
      // The session now lives in b's partition, persistent; a's copy expires with the resume window.
      const inB = `${keys.room(b)}sess:${sid}`;
      expect(Number(await admin.send("PTTL", [inB]))).toBe(-1);
      await until(
        async () => Number(await admin.send("PTTL", [inA])) > 0,
        "the copy in a's partition to expire",
      );
    } finally {
      admin.close();
    }
  });
});
