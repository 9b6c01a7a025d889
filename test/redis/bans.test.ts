/**
 * Bans over Redis beyond the shared contract (user-store.test.ts runs it): a v2 user's ban holds the
 * nick it names, and only while it stands; the index of held nicks keeps no entry after a lift.
 */
import { describe, expect, it } from "bun:test";
import { RedisClient } from "bun";
import type { Ban } from "../../server/chat/users";
import { call, startEngine, type TestEngine } from "./support/engines";
import { privateRedis } from "./support/redis-server";

const redis = privateRedis();
let prefixes = 0;
const NOW = Date.UTC(2025, 4, 6);

const ban = (t: TestEngine, b: Ban) => call<void>((d) => t.engine.users.ban("r", b, d));
const unban = (t: TestEngine, key: string) => call<boolean>((d) => t.engine.users.unban("r", key, d));
const banned = (t: TestEngine, who: { userId?: string; nickKey?: string }) =>
  call<Ban | undefined>((d) => t.engine.users.banned("r", who, NOW, d));

describe.skipIf(!redis.available)("bans over Redis", () => {
  it("moves a user's hold to the nick its newest ban names, and frees the nick when the ban is lifted", async () => {
    const prefix = `bans-${++prefixes}:`;
    const t = await startEngine(redis.url(), prefix);
    const raw = new RedisClient(redis.url());
    try {
      const first: Ban = { userId: "u1", nickKey: "ann", until: null, by: "mod" };
      const again: Ban = { userId: "u1", nickKey: "annie", until: null, by: "mod" };
      await ban(t, first);
      await ban(t, again);
      expect(await banned(t, { nickKey: "ann" })).toBeUndefined();
      expect(await banned(t, { nickKey: "annie" })).toStrictEqual(again);
      expect(await unban(t, "u1")).toBe(true);
      expect(await banned(t, { nickKey: "annie" })).toBeUndefined();
      expect(await raw.send("HGETALL", [`${prefix}room:r:bannick`])).toStrictEqual({});
      expect(await raw.send("HGETALL", [`${prefix}room:r:bans`])).toStrictEqual({});
    } finally {
      raw.close();
      await t.engine.stop();
    }
  });

  it("keeps a nick held while any ban holding it stands: two users banned under one nick, one lifted", async () => {
    const t = await startEngine(redis.url(), `bans-${++prefixes}:`);
    try {
      const old: Ban = { userId: "u1", nickKey: "x", until: null, by: "mod" };
      const later: Ban = { userId: "u2", nickKey: "x", until: NOW + 1000, by: "mod" };
      await ban(t, old);
      await ban(t, later);
      expect(await banned(t, { nickKey: "x" })).toStrictEqual(old);
      expect(await unban(t, "u1")).toBe(true);
      expect(await banned(t, { nickKey: "x" })).toStrictEqual(later);
      expect(await banned(t, { userId: "u1" })).toBeUndefined();
      expect(await unban(t, "u2")).toBe(true);
      expect(await banned(t, { nickKey: "x" })).toBeUndefined();
      // A v1 nick's ban is its own, whatever v2 users' bans come and go on that nick.
      const v1: Ban = { nickKey: "x", until: null, by: "admin" };
      await ban(t, v1);
      await ban(t, later);
      expect(await unban(t, "u2")).toBe(true);
      expect(await banned(t, { nickKey: "x" })).toStrictEqual(v1);
    } finally {
      await t.engine.stop();
    }
  });
});
