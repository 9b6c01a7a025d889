/**
 * v2's changes over Redis (change-scripts.ts): each change's outcome, its rev (gapless, never taken
 * by a refusal, even with two processes changing at once), the fold the Lua script does (the same as
 * core/posts.ts `applyChange`, checked on random changes), what post(), history, changes() and the
 * snapshot answer, counts after deletes, retention, and the log entries every process delivers.
 */
import { describe, expect, it } from "bun:test";
import { RedisClient } from "bun";
import fc from "fast-check";
import type {
  ChangeOutcome,
  ChangePage,
  ChangeRequest,
  Page,
  Post,
  RoomEntry,
  RoomSnapshot,
} from "../../server/chat/engine";
import { applyChange, changeMessage } from "../../server/chat/posts";
import type { Counts } from "../../server/chat/users";
import { call, conn, post, startEngine, type TestEngine } from "./support/engines";
import { privateRedis } from "./support/redis-server";

const redis = privateRedis();
let prefixes = 0;
const NOW = Date.UTC(2025, 4, 6, 7, 8, 9, 10);
const AT = new Date(NOW).toISOString();

const change = (t: TestEngine, room: string, req: ChangeRequest) =>
  call<ChangeOutcome>((d) => t.engine.change(room, req, d));
const postOf = (t: TestEngine, room: string, seq: number) =>
  call<Post | undefined>((d) => t.engine.post(room, seq, d));
const changesOf = (t: TestEngine, room: string, sinceRev: number, upTo: number, limit: number) =>
  call<ChangePage>((d) => t.engine.changes(room, sinceRev, upTo, limit, d));
const load = (t: TestEngine, room: string) => call<RoomSnapshot>((d) => t.engine.load(room, d));
const react = (seq: number, userId: string, emoji: string, on = true, maxEmoji = 20): ChangeRequest => ({
  type: "react",
  seq,
  emoji,
  on,
  userId,
  nick: `n-${userId}`,
  maxEmoji,
});

/** The change entries a sink got for `room`, in order. */
const changeEntries = (t: TestEngine, room: string) =>
  (t.sink.logs.get(room) ?? []).filter(
    (e): e is Extract<RoomEntry, { kind: "change" }> => e.kind === "change",
  );

async function withEngine(
  options: Parameters<typeof startEngine>[2],
  body: (t: TestEngine, prefix: string) => Promise<void>,
): Promise<void> {
  const prefix = `changes-${++prefixes}:`;
  const t = await startEngine(redis.url(), prefix, { now: () => NOW, ...options });
  try {
    await body(t, prefix);
  } finally {
    await t.engine.stop();
  }
}

describe.skipIf(!redis.available)("changes over Redis: outcomes and revs", () => {
  it("answers gone, unchanged and full as the post stands, never fails a topic, and takes no rev for a refusal", async () => {
    await withEngine({}, async (t) => {
      const seq = await post(t, conn("ann", "u-ann"), "r", "hello", { userId: "u-ann" });
      const outcomes = [
        await change(t, "r", { type: "edit", seq: 99, text: "x" }),
        await change(t, "r", { type: "delete", seq: 99, by: "mod" }),
        await change(t, "r", react(99, "u-bob", "👍")),
        await change(t, "r", react(seq, "u-bob", "👍")),
        await change(t, "r", react(seq, "u-bob", "👍")),
        await change(t, "r", react(seq, "u-ann", "👍", false)),
        await change(t, "r", react(seq, "u-ann", "🎉", true, 2)),
        await change(t, "r", react(seq, "u-ann", "❤️", true, 2)),
        // The cap counts distinct emoji: one already there takes more people.
        await change(t, "r", react(seq, "u-ann", "👍", true, 2)),
        await change(t, "r", { type: "topic", topic: "hi", nick: "ann" }),
        await change(t, "r", { type: "topic", topic: "hi", nick: "ann" }),
        await change(t, "r", { type: "topic", topic: "", nick: "ann" }),
        await change(t, "r", { type: "delete", seq, by: "mod" }),
        await change(t, "r", { type: "edit", seq, text: "too late" }),
        await change(t, "r", react(seq, "u-bob", "👍", false)),
        await change(t, "r", { type: "delete", seq, by: "mod" }),
      ];
      expect(outcomes).toStrictEqual([
        { ok: false, why: "gone" },
        { ok: false, why: "gone" },
        { ok: false, why: "gone" },
        { ok: true, rev: 1 },
        { ok: false, why: "unchanged" },
        { ok: false, why: "unchanged" },
        { ok: true, rev: 2 },
        { ok: false, why: "full" },
        { ok: true, rev: 3 },
        { ok: true, rev: 4 },
        { ok: true, rev: 5 },
        { ok: true, rev: 6 },
        { ok: true, rev: 7 },
        { ok: false, why: "gone" },
        { ok: false, why: "gone" },
        { ok: false, why: "gone" },
      ]);
      const page = await changesOf(t, "r", 0, 100, 100);
      expect(page.changes.map((c) => c.rev)).toStrictEqual([1, 2, 3, 4, 5, 6, 7]);
      expect((await load(t, "r")).lastRev).toBe(7);
    });
  });

  it("keeps revs gapless with two processes changing at once: 50 reactions, revs 1 to 50, each once, in every log", async () => {
    const prefix = `changes-${++prefixes}:`;
    const [a, b] = await Promise.all([startEngine(redis.url(), prefix), startEngine(redis.url(), prefix)]);
    try {
      await Promise.all([load(a, "r"), load(b, "r")]);
      const seq = await post(a, conn("ann", "u-ann"), "r", "react to me", { userId: "u-ann" });
      const users = Array.from({ length: 50 }, (_, i) => `u${i}`);
      const outcomes = await Promise.all(
        users.map((u, i) => change(i % 2 === 0 ? a : b, "r", react(seq, u, "👍"))),
      );
      const revs = outcomes.map((o) => (o.ok ? o.rev : 0));
      expect([...revs].sort((x, y) => x - y)).toStrictEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      await Promise.all([a.engine.quiesce(), b.engine.quiesce()]);
      for (const t of [a, b]) {
        expect(changeEntries(t, "r").map((e) => e.change.rev)).toStrictEqual(
          Array.from({ length: 50 }, (_, i) => i + 1),
        );
      }
      // First-reaction order is rev order.
      const byRev = users.map((u, i) => ({ u, rev: revs[i] as number })).sort((x, y) => x.rev - y.rev);
      const folded = await postOf(b, "r", seq);
      expect(folded?.reactions).toStrictEqual([
        { emoji: "👍", ids: byRev.map((x) => x.u), nicks: byRev.map((x) => `n-${x.u}`) },
      ]);
    } finally {
      await Promise.all([a.engine.stop(), b.engine.stop()]);
    }
  });
});

/** Texts that JSON and Lua's cjson write differently ("/"), or that need escapes. */
const TEXTS = ["plain", 'a/b "q" \\ é 😀', "line\nbreak\u2028sep", "@bob hi", "</script>"];
const EMOJI = ["👍", ":tada:", "❤️", "🎉"];

describe.skipIf(!redis.available)("changes over Redis: the fold", () => {
  it("folds random changes into posts exactly as applyChange does, with the same outcomes and messages", async () => {
    const step = fc.record({
      post: fc.nat(3),
      kind: fc.constantFrom("edit", "delete", "react", "react", "react", "topic"),
      text: fc.constantFrom(...TEXTS),
      user: fc.constantFrom("u1", "u2", "u3"),
      emoji: fc.constantFrom(...EMOJI),
      on: fc.boolean(),
      max: fc.constantFrom(2, 20),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 25 }), async (steps) => {
        await withEngine({}, async (t) => {
          // Posts 1-4: a v1 one, a v2 one with everything, a v2 action, a v1 one with a slash.
          await post(t, conn("old"), "r", "v1 post");
          await post(t, conn("ann", "u1"), "r", "hi @bob", {
            userId: "u1",
            replyTo: 1,
            mentions: ["bob"],
            mentionIds: ["u2"],
          });
          await post(t, conn("bob", "u2"), "r", "waves", { userId: "u2", kind: "action" });
          await post(t, conn("old"), "r", "a/b");
          const model = new Map<number, Post | undefined>();
          for (let seq = 1; seq <= 4; seq++) model.set(seq, await postOf(t, "r", seq));
          let rev = 0;
          const messages = [];
          for (const s of steps) {
            const seq = s.post + 1;
            const req: ChangeRequest =
              s.kind === "edit"
                ? { type: "edit", seq, text: s.text }
                : s.kind === "delete"
                  ? { type: "delete", seq, by: "mod" }
                  : s.kind === "react"
                    ? react(seq, s.user, s.emoji, s.on, s.max)
                    : { type: "topic", topic: s.text, nick: "ann" };
            const outcome = await change(t, "r", req);
            if (req.type === "topic") {
              expect(outcome).toStrictEqual({ ok: true, rev: ++rev });
              messages.push(changeMessage("r", rev, req, AT));
              continue;
            }
            const applied = applyChange(model.get(seq), req, AT);
            if (!applied.ok) {
              expect(outcome).toStrictEqual({ ok: false, why: applied.why });
              continue;
            }
            expect(outcome).toStrictEqual({ ok: true, rev: ++rev });
            model.set(seq, applied.post);
            messages.push(changeMessage("r", rev, req, AT));
            expect(await postOf(t, "r", seq)).toStrictEqual(applied.post);
          }
          const page = await call<Page>((d) => t.engine.history("r", 100, 10, d));
          expect(page.messages).toStrictEqual([1, 2, 3, 4].map((seq) => model.get(seq) as Post));
          // Edits of a deleted post are listed as its delete (their text is gone), each under its rev.
          const deleted = new Map<number, (typeof messages)[number]>();
          for (const m of messages) if (m.type === "delete") deleted.set(m.seq, m);
          const expected = messages.map((m) => {
            const d = m.type === "edit" ? deleted.get(m.seq) : undefined;
            return d ? { ...d, rev: m.rev } : m;
          });
          expect((await changesOf(t, "r", 0, rev, 1000)).changes).toStrictEqual(expected);
        });
      }),
      { numRuns: 25 },
    );
  }, 60_000);

  it("shows the fold in post() and history, and keeps a v1 post no one changed byte for byte", async () => {
    await withEngine({}, async (t, prefix) => {
      const raw = new RedisClient(redis.url());
      try {
        const untouched = await post(t, conn("old"), "r", 'say "hi" / bye');
        const reacted = await post(t, conn("eve"), "r", "react to v1");
        const edited = await post(t, conn("ann", "u-ann"), "r", "typo", { userId: "u-ann", replyTo: 1 });
        const gone = await post(t, conn("ann", "u-ann"), "r", "oops @bob", {
          userId: "u-ann",
          mentions: ["bob"],
          mentionIds: ["u-bob"],
        });
        const before = (await raw.send("ZRANGEBYSCORE", [`${prefix}room:r:msgs`, "1", "1"])) as string[];
        await change(t, "r", react(reacted, "u-bob", ":tada:"));
        await change(t, "r", react(reacted, "u-cy", ":tada:"));
        await change(t, "r", { type: "edit", seq: edited, text: "fixed" });
        await change(t, "r", react(gone, "u-bob", "👍"));
        await change(t, "r", { type: "edit", seq: gone, text: "oops again" });
        await change(t, "r", { type: "delete", seq: gone, by: "ann" });
        const common = { type: "chat", room: "r", sentAt: AT };
        const expected: Post[] = [
          { ...common, seq: untouched, nick: "old", text: 'say "hi" / bye' } as Post,
          {
            ...common,
            seq: reacted,
            nick: "eve",
            text: "react to v1",
            reactions: [{ emoji: ":tada:", nicks: ["n-u-bob", "n-u-cy"], ids: ["u-bob", "u-cy"] }],
          } as Post,
          {
            ...common,
            seq: edited,
            nick: "ann",
            text: "fixed",
            userId: "u-ann",
            replyTo: 1,
            editedAt: AT,
          } as Post,
          { ...common, seq: gone, nick: "ann", text: "", userId: "u-ann", deleted: true } as Post,
        ];
        const page = await call<Page>((d) => t.engine.history("r", 100, 10, d));
        expect(page.messages).toStrictEqual(expected);
        for (const p of expected) expect(await postOf(t, "r", p.seq)).toStrictEqual(p);
        expect(await postOf(t, "r", 99)).toBeUndefined();
        // The untouched v1 post: the very bytes it was stored and logged as.
        expect(await raw.send("ZRANGEBYSCORE", [`${prefix}room:r:msgs`, "1", "1"])).toStrictEqual(before);
        expect(JSON.stringify(page.messages[0])).toBe(before[0] as string);
      } finally {
        raw.close();
      }
    });
  });
});

/** Every key under `prefix`, read by its type, and its DUMP (uncompressed): one string per key. */
async function everything(raw: RedisClient, prefix: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let cursor = "0";
  do {
    const [next, keys] = (await raw.send("SCAN", [cursor, "MATCH", `${prefix}*`, "COUNT", "1000"])) as [
      string,
      string[],
    ];
    cursor = next;
    for (const key of keys) {
      const type = String(await raw.send("TYPE", [key]));
      const read: Record<string, [string, string[]]> = {
        string: ["GET", [key]],
        hash: ["HGETALL", [key]],
        zset: ["ZRANGE", [key, "0", "-1", "WITHSCORES"]],
        set: ["SMEMBERS", [key]],
        list: ["LRANGE", [key, "0", "-1"]],
        stream: ["XRANGE", [key, "-", "+"]],
      };
      const [command, args] = read[type] ?? ["TYPE", [key]];
      const value = await raw.send(command, args);
      const dump = await raw.send("DUMP", [key]);
      out.set(key, `${type} ${JSON.stringify(value)} ${String(dump)}`);
    }
  } while (cursor !== "0");
  return out;
}

describe.skipIf(!redis.available)("changes over Redis: deletes", () => {
  it("leaves a deleted post's text, and its edits' texts, in no key of Redis", async () => {
    const prefix = `changes-${++prefixes}:`;
    const raw = new RedisClient(redis.url());
    // DUMP compresses values with LZF unless told not to: uncompressed, every byte kept shows.
    await raw.send("CONFIG", ["SET", "rdbcompression", "no"]);
    const [a, b] = await Promise.all([startEngine(redis.url(), prefix), startEngine(redis.url(), prefix)]);
    try {
      await Promise.all([load(a, "r"), load(b, "r")]);
      const secrets = ["secret-first-7a1f", "secret-second-9c2e", "secret-third-3b8d"];
      const ann = conn("ann", "u-ann");
      await post(a, ann, "r", "before");
      const seq = await post(a, ann, "r", `${secrets[0]} @bob`, {
        userId: "u-ann",
        mentions: ["bob"],
        mentionIds: ["u-bob"],
      });
      await post(a, conn("old"), "r", "after");
      await change(b, "r", { type: "edit", seq, text: secrets[1] as string });
      await change(a, "r", react(seq, "u-bob", "👍"));
      await change(b, "r", { type: "edit", seq, text: secrets[2] as string });
      await Promise.all([a.engine.quiesce(), b.engine.quiesce()]);
      const holding = (all: Map<string, string>) =>
        secrets.flatMap((s) => [...all].filter(([, v]) => v.includes(s)).map(([k]) => `${s} in ${k}`));
      // The check can fail: before the delete, the texts are there (the newest in DUMP too).
      const beforeDelete = await everything(raw, prefix);
      expect(holding(beforeDelete).length).toBeGreaterThan(0);
      expect(beforeDelete.get(`${prefix}room:r:msgs`)?.split(secrets[2] as string).length).toBe(3);

      expect(await change(a, "r", { type: "delete", seq, by: "mod" })).toStrictEqual({ ok: true, rev: 4 });
      await Promise.all([a.engine.quiesce(), b.engine.quiesce()]);
      expect(holding(await everything(raw, prefix))).toStrictEqual([]);
      // The edits' messages now say what became of the post, under their own revs.
      expect((await changesOf(a, "r", 0, 10, 10)).changes).toStrictEqual([
        { type: "delete", room: "r", rev: 1, seq, by: "mod" },
        { type: "reaction", room: "r", rev: 2, seq, emoji: "👍", nick: "n-u-bob", on: true },
        { type: "delete", room: "r", rev: 3, seq, by: "mod" },
        { type: "delete", room: "r", rev: 4, seq, by: "mod" },
      ]);
      // Both processes delivered everything once, in order.
      for (const t of [a, b])
        expect(changeEntries(t, "r").map((e) => e.change.rev)).toStrictEqual([1, 2, 3, 4]);
    } finally {
      raw.close();
      await Promise.all([a.engine.stop(), b.engine.stop()]);
    }
  });

  it("takes a deleted post out of unread and mentions counts, whoever wrote it, and counts none twice", async () => {
    await withEngine({}, async (t) => {
      const counts = (userId: string) =>
        call<Counts[]>((d) =>
          t.engine.users.counts(userId, [{ room: "r", readSeq: 0, upTo: 5 }], 1000, d),
        ).then((c) => c[0]);
      const bob = conn("bob", "u-bob");
      const ann = conn("ann", "u-ann");
      await post(t, bob, "r", "hi @ann", { userId: "u-bob", mentions: ["ann"], mentionIds: ["u-ann"] }); // 1
      await post(t, conn("old"), "r", "v1 here"); // 2
      await post(t, conn("old2"), "r", "v1 too"); // 3
      await post(t, ann, "r", "mine too", { userId: "u-ann" }); // 4
      await post(t, bob, "r", "@ann again", { userId: "u-bob", mentions: ["ann"], mentionIds: ["u-ann"] }); // 5
      expect(await counts("u-ann")).toStrictEqual({ unread: 4, mentions: 2 });
      expect(await counts("u-bob")).toStrictEqual({ unread: 3, mentions: 0 });
      await change(t, "r", { type: "delete", seq: 1, by: "bob" });
      expect(await counts("u-ann")).toStrictEqual({ unread: 3, mentions: 1 });
      await change(t, "r", { type: "delete", seq: 2, by: "mod" });
      expect(await counts("u-ann")).toStrictEqual({ unread: 2, mentions: 1 });
      // Ann's own post, deleted: still not unread for her, and no longer for bob.
      await change(t, "r", { type: "delete", seq: 4, by: "ann" });
      expect(await counts("u-ann")).toStrictEqual({ unread: 2, mentions: 1 });
      expect(await counts("u-bob")).toStrictEqual({ unread: 1, mentions: 0 });
    });
  });
});

describe.skipIf(!redis.available)("changes over Redis: pages, snapshot, retention", () => {
  it("pages changes by rev: after sinceRev, up to upTo, at most limit, with more when some were cut", async () => {
    await withEngine({}, async (t) => {
      for (let i = 1; i <= 7; i++) await change(t, "r", { type: "topic", topic: `t${i}`, nick: "ann" });
      const revs = async (sinceRev: number, upTo: number, limit: number) => {
        const page = await changesOf(t, "r", sinceRev, upTo, limit);
        return [page.changes.map((c) => c.rev), page.more];
      };
      expect(await revs(0, 7, 3)).toStrictEqual([[1, 2, 3], true]);
      expect(await revs(3, 7, 3)).toStrictEqual([[4, 5, 6], true]);
      expect(await revs(6, 7, 3)).toStrictEqual([[7], false]);
      expect(await revs(0, 3, 3)).toStrictEqual([[1, 2, 3], false]);
      expect(await revs(2, 5, 10)).toStrictEqual([[3, 4, 5], false]);
      expect(await revs(5, 5, 10)).toStrictEqual([[], false]);
      expect(await revs(9, 5, 10)).toStrictEqual([[], false]);
      expect((await changesOf(t, "r", 4, 5, 1)).changes).toStrictEqual([
        { type: "topic", room: "r", rev: 5, topic: "t5", nick: "ann" },
      ]);
      expect(await changesOf(t, "empty", 0, 10, 10)).toStrictEqual({ changes: [], more: false });
    });
  });

  it("gives the snapshot the room's newest rev and its topic, consistent with the log that follows", async () => {
    const prefix = `changes-${++prefixes}:`;
    const [a, b] = await Promise.all([startEngine(redis.url(), prefix), startEngine(redis.url(), prefix)]);
    try {
      const first = await load(a, "r");
      expect([first.lastRev, first.topic]).toStrictEqual([0, ""]);
      const seq = await post(a, conn("ann", "u-ann"), "r", "hi", { userId: "u-ann" });
      await change(a, "r", { type: "topic", topic: "Welcome / bienvenue", nick: "ann" });
      await change(a, "r", react(seq, "u-bob", "👍"));
      const second = await load(b, "r");
      expect([second.lastRev, second.topic]).toStrictEqual([2, "Welcome / bienvenue"]);
      expect(second.recent.at(-1)?.reactions).toStrictEqual([
        { emoji: "👍", nicks: ["n-u-bob"], ids: ["u-bob"] },
      ]);
      await change(a, "r", { type: "topic", topic: "", nick: "ann" });
      await b.engine.quiesce();
      // b's log goes on from its snapshot: rev 3 and nothing before it.
      expect(changeEntries(b, "r").map((e) => e.change)).toStrictEqual([
        { type: "topic", room: "r", rev: 3, topic: "", nick: "ann" },
      ]);
      expect(changeEntries(b, "r")[0]?.n).toBe(second.lastN + 1);
      const third = await load(b, "r");
      expect([third.lastRev, third.topic]).toStrictEqual([3, ""]);
    } finally {
      await Promise.all([a.engine.stop(), b.engine.stop()]);
    }
  });

  it("drops the changes of posts that retention trimmed, keeps the others' and the topics', revs unchanged", async () => {
    await withEngine({ retentionMaxMessages: 3 }, async (t, prefix) => {
      const raw = new RedisClient(redis.url());
      try {
        const ann = conn("ann", "u-ann");
        for (let i = 1; i <= 3; i++) await post(t, ann, "r", `p${i}`, { userId: "u-ann" });
        await change(t, "r", react(1, "u-bob", "👍")); // 1
        await change(t, "r", { type: "edit", seq: 2, text: "p2 fixed" }); // 2
        await change(t, "r", { type: "topic", topic: "kept", nick: "ann" }); // 3
        await change(t, "r", { type: "delete", seq: 3, by: "ann" }); // 4
        for (let i = 4; i <= 6; i++) await post(t, ann, "r", `p${i}`, { userId: "u-ann" });
        // 1-3 are trimmed: changing them is `gone`; the next change stored trims their changes.
        expect(await change(t, "r", react(2, "u-bob", "👍"))).toStrictEqual({ ok: false, why: "gone" });
        expect(await change(t, "r", react(6, "u-bob", "👍"))).toStrictEqual({ ok: true, rev: 5 });
        const page = await changesOf(t, "r", 0, 10, 10);
        expect(page.changes.map((c) => [c.rev, c.type])).toStrictEqual([
          [3, "topic"],
          [5, "reaction"],
        ]);
        const zset = (part: string) => raw.send("ZRANGE", [`${prefix}room:r:${part}`, "0", "-1"]);
        expect(await zset("chx")).toStrictEqual(["5"]);
        expect(await zset("del")).toStrictEqual([]);
      } finally {
        raw.close();
      }
    });
  });
});

/** Median of a list of numbers. */
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number;

/** Redis's own time per EVAL (and per other command) since the last CONFIG RESETSTAT. */
async function perCall(raw: RedisClient, command: string): Promise<string> {
  const info = String(await raw.send("INFO", ["commandstats"]));
  return (
    new RegExp(`cmdstat_${command}:calls=(\\d+),usec=(\\d+),usec_per_call=([\\d.]+)`).exec(info)?.[3] ?? "?"
  );
}

/**
 * MEASURE_CHANGES=1: what one change script costs (a reaction, an edit, a delete, each on a post
 * with 10 reactions), and one history page of 200 posts with 10 reactions each.
 */
describe.if(Boolean(process.env.MEASURE_CHANGES) && redis.available)("the cost of changes on Redis", () => {
  it("one change script, and history(200) of posts with 10 reactions each", async () => {
    await withEngine({}, async (t) => {
      const raw = new RedisClient(redis.url());
      try {
        const ann = conn("ann", "u-ann");
        for (let i = 0; i < 400; i++)
          await post(t, ann, "r", `a post of some length, as chats are: ${i}`, { userId: "u-ann" });
        for (let seq = 1; seq <= 400; seq++)
          for (let u = 0; u < 10; u++) await change(t, "r", react(seq, `user-${u}`, EMOJI[u % 4] as string));
        const timed = async (f: () => Promise<unknown>) => {
          const t0 = performance.now();
          await f();
          return performance.now() - t0;
        };
        const report = async (what: string, f: (i: number) => Promise<unknown>, runs: number) => {
          await raw.send("CONFIG", ["RESETSTAT"]);
          const times: number[] = [];
          for (let i = 0; i < runs; i++) times.push(await timed(() => f(i)));
          return `${what}: ${median(times).toFixed(3)} ms round trip (median), ${await perCall(raw, "eval")} us in Redis`;
        };
        const lines = [
          await report("reaction on (11th reactor)", (i) => change(t, "r", react(i + 1, "u-x", "👍")), 200),
          await report("reaction off", (i) => change(t, "r", react(i + 1, "u-x", "👍", false)), 200),
          await report("edit", (i) => change(t, "r", { type: "edit", seq: i + 1, text: `edited ${i}` }), 200),
          await report("topic", (i) => change(t, "r", { type: "topic", topic: `t${i}`, nick: "ann" }), 200),
          await report(
            "delete (after an edit)",
            (i) => change(t, "r", { type: "delete", seq: i + 1, by: "mod" }),
            200,
          ),
        ];
        await raw.send("CONFIG", ["RESETSTAT"]);
        const times: number[] = [];
        let bytes = 0;
        for (let i = 0; i < 51; i++) {
          const t0 = performance.now();
          const page = await call<Page>((d) => t.engine.history("r", 401, 200, d));
          times.push(performance.now() - t0);
          bytes = JSON.stringify(page.messages).length;
          expect(page.messages[199]?.reactions?.length).toBe(4);
        }
        lines.push(
          `history(200 posts, 10 reactions each): ${median(times.slice(1)).toFixed(3)} ms round trip (median), ` +
            `${await perCall(raw, "zrevrangebyscore")} us in Redis, ${bytes} bytes of posts`,
        );
        console.log(lines.join("\n"));
      } finally {
        raw.close();
      }
    });
  }, 120_000);
});
