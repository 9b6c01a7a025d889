/**
 * RedisEngine.users: the UserStore contract the local stores pass, then what only Redis can get
 * wrong: limits and markers under concurrent writers on two engines, counts kept by the chat script
 * (exact around the cap, the author's own posts left out, retention), and the cost of counting.
 */
import { describe, expect, it } from "bun:test";
import { RedisClient } from "bun";
import type { EngineConn } from "../../server/chat/engine";
import type { Counts, JoinOutcome } from "../../server/chat/users";
import { type ContractPost, type UserStoreHarness, userStoreContract } from "../support/user-store-contract";
import { call, conn, startEngine, type TestEngine } from "./support/engines";
import { privateRedis } from "./support/redis-server";

const redis = privateRedis();
let prefixes = 0;

/** Posts as the contract gives them, through the engine's chat (seqs come out as the contract numbers them). */
async function postAll(t: TestEngine, room: string, posts: readonly ContractPost[]): Promise<void> {
  const authors = new Map<string, EngineConn>();
  const author = (userId: string | null) => {
    const key = userId ?? "";
    let c = authors.get(key);
    if (!c) {
      c = conn(userId === null ? "v1author" : `n-${userId}`, userId ?? undefined);
      authors.set(key, c);
    }
    return c;
  };
  const ids: string[] = [];
  for (const p of posts) {
    const c = author(p.userId);
    const id = `seq${p.seq}`;
    ids.push(`${c.id}/${room}/${id}`);
    t.engine.chat(
      c,
      room,
      `post ${p.seq}`,
      id,
      p.userId === null ? undefined : { userId: p.userId, mentionIds: p.mentionIds ?? [] },
    );
  }
  await t.engine.quiesce();
  expect(ids.map((id) => t.sink.commits.get(id))).toStrictEqual(posts.map((p) => p.seq));
}

async function harness(prefix: string, partitions?: number): Promise<UserStoreHarness> {
  const t = await startEngine(redis.url(), prefix, partitions ? { partitions } : {});
  return {
    store: t.engine.users,
    close: () => t.engine.stop(),
    restart: async () => {
      await t.engine.stop();
      return harness(prefix, partitions);
    },
    post: (room, posts) => postAll(t, room, posts),
  };
}

if (redis.available) {
  userStoreContract("RedisEngine.users", () => harness(`users-${++prefixes}:`));
  // Users spread over the partitions by id, as on a cluster (key-space.ts).
  userStoreContract("RedisEngine.users, 4 partitions", () => harness(`users-${++prefixes}:`, 4));
}

const counts = (t: TestEngine, userId: string, room: string, readSeq: number, upTo: number, cap = 1000) =>
  call<Counts[]>((d) => t.engine.users.counts(userId, [{ room, readSeq, upTo }], cap, d)).then((c) => c[0]);

describe.skipIf(!redis.available)("RedisEngine.users under concurrent writers", () => {
  it("never lets a user past max rooms, whichever process joins (twenty joins at once, max 5)", async () => {
    const prefix = `race-${++prefixes}:`;
    const [a, b] = await Promise.all([startEngine(redis.url(), prefix), startEngine(redis.url(), prefix)]);
    try {
      await call<void>((d) => a.engine.users.create("ann", "Ann", d));
      const outcomes = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          call<JoinOutcome>((d) =>
            (i % 2 === 0 ? a : b).engine.users.join("ann", { room: `r${i}`, readSeq: 0 }, 5, d),
          ),
        ),
      );
      expect(outcomes.filter((o) => o === "joined").length).toBe(5);
      expect(outcomes.filter((o) => o === "full").length).toBe(15);
      const user = await call<{ rooms: unknown[] } | undefined>((d) => b.engine.users.load("ann", d));
      expect(user?.rooms.length).toBe(5);
    } finally {
      await Promise.all([a.engine.stop(), b.engine.stop()]);
    }
  });

  it("keeps the highest marker of reads sent at once from two processes, in any order", async () => {
    const prefix = `read-${++prefixes}:`;
    const [a, b] = await Promise.all([startEngine(redis.url(), prefix), startEngine(redis.url(), prefix)]);
    try {
      await call<JoinOutcome>((d) => a.engine.users.join("ann", { room: "r", readSeq: 3 }, 10, d));
      const seqs = [40, 7, 12, 99, 1, 55, 98, 3, 60];
      const answers = await Promise.all(
        seqs.map((seq, i) =>
          call<number | undefined>((d) => (i % 2 === 0 ? a : b).engine.users.read("ann", "r", seq, d)),
        ),
      );
      // Each answer is the marker stored by then: never below what was asked, never above the highest.
      answers.forEach((stored, i) => {
        expect(stored).toBeGreaterThanOrEqual(seqs[i] as number);
        expect(stored).toBeLessThanOrEqual(99);
      });
      expect(await call<number | undefined>((d) => b.engine.users.read("ann", "r", 0, d))).toBe(99);
    } finally {
      await Promise.all([a.engine.stop(), b.engine.stop()]);
    }
  });
});

describe.skipIf(!redis.available)("RedisEngine.users counts", () => {
  it("counts exactly up to the cap (999, 1000, 1001 posts by others), leaving out the user's own", async () => {
    const t = await startEngine(redis.url(), `cap-${++prefixes}:`);
    try {
      // Odd seqs: bob's, each naming ann; even seqs: ann's. 1001 of each.
      await postAll(
        t,
        "r",
        Array.from({ length: 2002 }, (_, i) =>
          i % 2 === 0 ? { seq: i + 1, userId: "bob", mentionIds: ["ann"] } : { seq: i + 1, userId: "ann" },
        ),
      );
      expect(await counts(t, "ann", "r", 0, 1997)).toStrictEqual({ unread: 999, mentions: 999 });
      expect(await counts(t, "ann", "r", 0, 1999)).toStrictEqual({ unread: 1000, mentions: 1000 });
      expect(await counts(t, "ann", "r", 0, 2001)).toStrictEqual({ unread: 1000, mentions: 1000 });
      expect(await counts(t, "ann", "r", 0, 2002, 1002)).toStrictEqual({ unread: 1001, mentions: 1001 });
      expect(await counts(t, "ann", "r", 0, 3)).toStrictEqual({ unread: 2, mentions: 2 });
      expect(await counts(t, "bob", "r", 1, 2002)).toStrictEqual({ unread: 1000, mentions: 0 });
      expect(await counts(t, "bob", "r", 1, 2002, 1001)).toStrictEqual({ unread: 1001, mentions: 0 });
      // A v1 user's chats count for everyone (no v2 author to leave out).
      const v1 = conn("old");
      t.engine.chat(v1, "r", "from v1", "x");
      await t.engine.quiesce();
      expect(await counts(t, "ann", "r", 2001, 2003)).toStrictEqual({ unread: 1, mentions: 0 });
    } finally {
      await t.engine.stop();
    }
  });

  it("takes no mention of the author by itself, and counts a name given twice once", async () => {
    const t = await startEngine(redis.url(), `self-${++prefixes}:`);
    try {
      await postAll(t, "r", [{ seq: 1, userId: "ann", mentionIds: ["ann", "bob", "bob"] }]);
      expect(await counts(t, "ann", "r", 0, 1)).toStrictEqual({ unread: 0, mentions: 0 });
      expect(await counts(t, "bob", "r", 0, 1)).toStrictEqual({ unread: 1, mentions: 1 });
    } finally {
      await t.engine.stop();
    }
  });

  it("counts only what retention kept, and trims the users' zsets with the room's history", async () => {
    const prefix = `keep-${++prefixes}:`;
    const t = await startEngine(redis.url(), prefix, { retentionMaxMessages: 3 });
    const raw = new RedisClient(redis.url());
    try {
      // cy writes 1 and 2, naming dan, and never again: their zsets are not trimmed by later chats.
      await postAll(t, "r", [
        { seq: 1, userId: "cy", mentionIds: ["dan"] },
        { seq: 2, userId: "cy", mentionIds: ["dan"] },
      ]);
      await postAll(
        t,
        "r",
        Array.from({ length: 8 }, (_, i) =>
          (i + 3) % 2 === 0
            ? { seq: i + 3, userId: "ann" }
            : { seq: i + 3, userId: "bob", mentionIds: ["ann"] },
        ),
      );
      // Kept: 8 (ann's), 9 (bob's, naming ann), 10 (ann's).
      expect(await counts(t, "ann", "r", 0, 10)).toStrictEqual({ unread: 1, mentions: 1 });
      expect(await counts(t, "cy", "r", 0, 10)).toStrictEqual({ unread: 3, mentions: 0 });
      expect(await counts(t, "dan", "r", 0, 10)).toStrictEqual({ unread: 3, mentions: 0 });
      expect(await counts(t, "bob", "r", 0, 10)).toStrictEqual({ unread: 2, mentions: 0 });
      expect(await counts(t, "ann", "r", 8, 10)).toStrictEqual({ unread: 1, mentions: 1 });
      expect(await counts(t, "ann", "r", 9, 10)).toStrictEqual({ unread: 0, mentions: 0 });
      const zset = (part: string) => raw.send("ZRANGE", [`${prefix}room:r:${part}`, "0", "-1"]);
      expect(await zset("own:ann")).toStrictEqual(["8", "10"]);
      expect(await zset("own:bob")).toStrictEqual(["9"]);
      expect(await zset("men:ann")).toStrictEqual(["9"]);
      expect(await zset("own:cy")).toStrictEqual(["1", "2"]);
    } finally {
      raw.close();
      await t.engine.stop();
    }
  });
});

/**
 * MEASURE_COUNTS=1: what one welcome's counts cost a user with 100 rooms of 5,000 unread posts each.
 * The rooms' zsets are filled directly (what 500,000 chats would leave behind, minus their text).
 */
describe.if(Boolean(process.env.MEASURE_COUNTS) && redis.available)("the cost of counts on Redis", () => {
  it("one counts() over 100 rooms, each with 5,000 unread posts (a seventh of them the user's) and 100 mentions", async () => {
    const prefix = `cost-${++prefixes}:`;
    const t = await startEngine(redis.url(), prefix);
    const raw = new RedisClient(redis.url());
    const rooms = Array.from({ length: 100 }, (_, i) => `room-${i}`);
    const fill = `
      local P, room = ARGV[1], ARGV[2]
      for s = 1, 5000 do
        redis.call('ZADD', P .. 'room:' .. room .. ':msgs', s, '{"type":"chat","seq":' .. s .. ',"text":"a post of some length, as chats are"}')
        if s % 7 == 0 then redis.call('ZADD', P .. 'room:' .. room .. ':own:me', s, s) end
        if s % 50 == 0 then redis.call('ZADD', P .. 'room:' .. room .. ':men:me', s, s) end
      end`;
    try {
      for (const room of rooms) await raw.send("EVAL", [fill, "0", prefix, room]);
      const queries = rooms.map((room) => ({ room, readSeq: 0, upTo: 5000 }));
      const times: number[] = [];
      for (let run = 0; run < 51; run++) {
        const t0 = performance.now();
        const result = await call<Counts[]>((d) => t.engine.users.counts("me", queries, 1000, d));
        times.push(performance.now() - t0);
        expect(result[0]).toStrictEqual({ unread: 1000, mentions: 100 });
      }
      await raw.send("CONFIG", ["RESETSTAT"]);
      for (let run = 0; run < 50; run++)
        await call<Counts[]>((d) => t.engine.users.counts("me", queries, 1000, d));
      const info = String(await raw.send("INFO", ["commandstats"]));
      const evalStat = /cmdstat_eval:calls=(\d+),usec=(\d+),usec_per_call=([\d.]+)/.exec(info);
      const sorted = times.slice(1).sort((x, y) => x - y);
      console.log(
        `Redis counts(): 100 rooms x 5,000 unread + 100 mentions: first ${times[0]?.toFixed(2)} ms, ` +
          `median ${sorted[25]?.toFixed(2)} ms, p90 ${sorted[45]?.toFixed(2)} ms (round trip); ` +
          `inside Redis ${evalStat?.[3]} us per call`,
      );
    } finally {
      raw.close();
      await t.engine.stop();
    }
  }, 60_000);
});
