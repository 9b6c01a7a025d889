/**
 * What every process delivers of v2's changes over Redis: a change entry per rev with its wire
 * message, kicks (logged, never stored), and posts that changed before a process read them (their
 * stream entries name them; the text lives in one place only), retention's trimmed posts included.
 */
import { describe, expect, it } from "bun:test";
import { RedisClient } from "bun";
import type { ChangeOutcome, ChangeRequest, Kick, RoomEntry, RoomSnapshot } from "../../server/chat/engine";
import { silentLogger } from "../../server/chat/log";
import { changeMessage } from "../../server/chat/posts";
import { Inflight } from "../../server/engines/redis/inflight";
import { KeySpace } from "../../server/engines/redis/key-space";
import { RedisLink } from "../../server/engines/redis/redis-link";
import { StreamFollower } from "../../server/engines/redis/stream-follower";
import { BLOCK_MS } from "../../server/engines/redis/stream-reader";
import { until } from "./support/cluster";
import { call, conn, post, startEngine, type TestEngine } from "./support/engines";
import { privateRedis } from "./support/redis-server";

const redis = privateRedis();
let prefixes = 0;
const NOW = Date.UTC(2025, 4, 6, 7, 8, 9, 10);
const AT = new Date(NOW).toISOString();

const change = (t: TestEngine, room: string, req: ChangeRequest) =>
  call<ChangeOutcome>((d) => t.engine.change(room, req, d));
const load = (t: TestEngine, room: string) => call<RoomSnapshot>((d) => t.engine.load(room, d));
const after = (t: TestEngine, room: string, n: number) =>
  (t.sink.logs.get(room) ?? []).filter((e) => e.n > n);

async function pair(
  options: Parameters<typeof startEngine>[2] = {},
): Promise<[TestEngine, TestEngine, string]> {
  const prefix = `log-${++prefixes}:`;
  const [a, b] = await Promise.all([
    startEngine(redis.url(), prefix, { now: () => NOW, ...options }),
    startEngine(redis.url(), prefix, { now: () => NOW, ...options }),
  ]);
  return [a, b, prefix];
}

/**
 * A process's follower of `room` that starts reading only now, from the stream position and entry
 * number given: what it delivers is what a process that fell behind there gets.
 */
async function lateReader(
  prefix: string,
  room: string,
  lastId: string,
  lastN: number,
): Promise<{ entries: RoomEntry[]; resyncs: string[]; stop: () => Promise<void> }> {
  const link = new RedisLink({ url: redis.url(), timeoutMs: 2000 });
  await link.connect();
  const entries: RoomEntry[] = [];
  const resyncs: string[] = [];
  const follower = new StreamFollower({
    link,
    keys: new KeySpace(prefix, 1, false),
    readerLink: () => new RedisLink({ url: redis.url(), timeoutMs: 2000 + BLOCK_MS }),
    procId: `late-${prefixes}`,
    inflight: new Inflight(silentLogger),
    log: silentLogger,
    deliver: (_room, got) => entries.push(...got),
    resync: (_room, why) => resyncs.push(why),
  });
  follower.loaded(follower.start(room), lastId, lastN, "");
  follower.follow();
  return {
    entries,
    resyncs,
    stop: async () => {
      await follower.close();
      link.close();
    },
  };
}

/** The room's newest stream id and entry number, as a snapshot gives them. */
async function position(raw: RedisClient, prefix: string, room: string): Promise<[string, number]> {
  const last = (await raw.send("XREVRANGE", [`${prefix}room:${room}:log`, "+", "-", "COUNT", "1"])) as Array<
    [string, string[]]
  >;
  const n = await raw.send("HGET", [`${prefix}room:${room}:meta`, "n"]);
  return [last[0]?.[0] ?? "0-0", Number(n ?? 0)];
}

describe.skipIf(!redis.available)("the log of changes over Redis", () => {
  it("delivers each change on every process as one entry, its message as changeMessage makes it", async () => {
    const [a, b] = await pair();
    try {
      const [snapA, snapB] = await Promise.all([load(a, "r"), load(b, "r")]);
      const seq = await post(a, conn("ann", "u-ann"), "r", "hi", { userId: "u-ann" });
      const reqs: ChangeRequest[] = [
        { type: "edit", seq, text: "hi / there" },
        { type: "react", seq, emoji: "👍", on: true, userId: "u-bob", nick: "bob", maxEmoji: 20 },
        { type: "topic", topic: "news", nick: "bob" },
        { type: "react", seq, emoji: "👍", on: false, userId: "u-bob", nick: "bob", maxEmoji: 20 },
        { type: "delete", seq, by: "mod" },
      ];
      for (const [i, req] of reqs.entries()) await change(i % 2 === 0 ? a : b, "r", req);
      await Promise.all([a.engine.quiesce(), b.engine.quiesce()]);
      const expected = reqs.map((req, i) => changeMessage("r", i + 1, req, AT));
      for (const [t, snap] of [
        [a, snapA],
        [b, snapB],
      ] as const) {
        const log = after(t, "r", snap.lastN);
        expect(log.map((e) => e.n)).toStrictEqual(log.map((_, i) => snap.lastN + i + 1));
        expect(log.filter((e) => e.kind === "change").map((e) => e.change)).toStrictEqual(expected);
      }
    } finally {
      await Promise.all([a.engine.stop(), b.engine.stop()]);
    }
  });

  it("gives a process that reads a post after it changed the post as first posted, with its text as it stands, then its changes", async () => {
    const [a, b, prefix] = await pair();
    const raw = new RedisClient(redis.url());
    try {
      await load(a, "r");
      const [lastId, lastN] = await position(raw, prefix, "r");
      const untouched = await post(a, conn("old"), "r", "as it was");
      const v1 = await post(a, conn("eve"), "r", "v1 text");
      const v2 = await post(a, conn("ann", "u-ann"), "r", "typo", { userId: "u-ann", mentions: ["eve"] });
      await change(a, "r", { type: "edit", seq: v2, text: "fixed" });
      await change(b, "r", {
        type: "react",
        seq: v2,
        emoji: "👍",
        on: true,
        userId: "u-bob",
        nick: "bob",
        maxEmoji: 20,
      });
      await change(a, "r", {
        type: "react",
        seq: v1,
        emoji: "🎉",
        on: true,
        userId: "u-bob",
        nick: "bob",
        maxEmoji: 20,
      });
      await change(b, "r", { type: "delete", seq: v1, by: "mod" });
      const late = await lateReader(prefix, "r", lastId, lastN);
      try {
        await until(async () => late.entries.length >= 7, "the late reader's entries");
        const chats = late.entries.filter((e) => e.kind === "chat");
        const base = { type: "chat", room: "r", sentAt: AT };
        expect(chats.map((e) => e.msg)).toStrictEqual([
          { ...base, seq: untouched, nick: "old", text: "as it was" },
          { ...base, seq: v1, nick: "eve", text: "(deleted)" },
          { ...base, seq: v2, nick: "ann", text: "fixed", userId: "u-ann", mentions: ["eve"] },
        ] as never);
        // The wire a v1 connection is sent: the stored bytes if unchanged, else v1's view as it stands.
        expect(chats.map((e) => e.wire)).toStrictEqual(chats.map((e) => JSON.stringify(e.msg)));
        expect(late.entries.filter((e) => e.kind === "change").map((e) => e.change.rev)).toStrictEqual([
          1, 2, 3, 4,
        ]);
        expect(late.entries.map((e) => e.n)).toStrictEqual(late.entries.map((_, i) => lastN + i + 1));
        expect(late.resyncs).toStrictEqual([]);
      } finally {
        await late.stop();
      }
    } finally {
      raw.close();
      await Promise.all([a.engine.stop(), b.engine.stop()]);
    }
  });

  it("gives a process behind retention the posts it trimmed meanwhile, and resyncs one further behind", async () => {
    const [a, b, prefix] = await pair({ retentionMaxMessages: 2, streamMaxLen: 10 });
    const raw = new RedisClient(redis.url());
    try {
      await load(a, "r");
      const [lastId, lastN] = await position(raw, prefix, "r");
      const ann = conn("ann");
      const texts = ["one", "two", "three", "four", "five"];
      for (const text of texts) await post(a, ann, "r", text);
      expect(await raw.send("ZCARD", [`${prefix}room:r:msgs`])).toBe(2);
      const late = await lateReader(prefix, "r", lastId, lastN);
      try {
        await until(async () => late.entries.filter((e) => e.kind === "chat").length === 5, "five chats");
        expect(late.entries.flatMap((e) => (e.kind === "chat" ? [e.msg.text] : []))).toStrictEqual(texts);
        expect(late.resyncs).toStrictEqual([]);
      } finally {
        await late.stop();
      }
      // The trimmed posts are kept for as long as the stream may name them (MAXLEN + 1000), no longer.
      await raw.send("ZREMRANGEBYSCORE", [`${prefix}room:r:trimmed`, "1", "1"]);
      const further = await lateReader(prefix, "r", lastId, lastN);
      try {
        await until(async () => further.resyncs.length === 1, "a resync");
        expect(further.resyncs[0]).toContain("post 1");
        expect(further.entries.filter((e) => e.kind === "chat")).toStrictEqual([]);
      } finally {
        await further.stop();
      }
    } finally {
      raw.close();
      await Promise.all([a.engine.stop(), b.engine.stop()]);
    }
  });

  it("logs a kick on every process, in the room's order, with only the fields it has, and stores nothing", async () => {
    const [a, b, prefix] = await pair();
    const raw = new RedisClient(redis.url());
    try {
      const [snapA, snapB] = await Promise.all([load(a, "r"), load(b, "r")]);
      await post(a, conn("ann", "u-ann"), "r", "before the kicks", { userId: "u-ann" });
      await Promise.all([a.engine.quiesce(), b.engine.quiesce()]);
      const keys = async () => ((await raw.send("KEYS", [`${prefix}room:r:*`])) as string[]).sort();
      const before = await keys();
      const ban: Kick = { nick: "ann", by: "mod", reason: "spam", until: AT };
      const plain: Kick = { nick: "old", by: "admin" };
      a.engine.kick("r", ban);
      b.engine.kick("r", plain);
      await Promise.all([a.engine.quiesce(), b.engine.quiesce()]);
      const kicks = (t: TestEngine, n: number): unknown[] =>
        after(t, "r", n).filter((e) => e.kind !== "chat");
      const expected = [
        { n: snapA.lastN + 2, kind: "kick", ...ban },
        { n: snapA.lastN + 3, kind: "kick", ...plain },
      ];
      expect(kicks(a, snapA.lastN)).toStrictEqual(expected);
      expect(kicks(b, snapB.lastN)).toStrictEqual(expected);
      // Nothing new but the stream's entries and the meta's entry count.
      expect(await keys()).toStrictEqual(before);
    } finally {
      raw.close();
      await Promise.all([a.engine.stop(), b.engine.stop()]);
    }
  });
});
