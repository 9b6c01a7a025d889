/**
 * Posts over Redis: a v1 chat is stored, logged and paged as exactly the bytes it always was; a v2
 * post carries its author's id, kind, replyTo and mentions (each only when it applies) to the log
 * and to history pages, in the order v2's chat message has its fields.
 */
import { describe, expect, it } from "bun:test";
import { RedisClient } from "bun";
import type { Page } from "../../server/chat/engine";
import { call, conn, post, startEngine } from "./support/engines";
import { privateRedis } from "./support/redis-server";

const redis = privateRedis();
let prefixes = 0;
const NOW = Date.UTC(2025, 4, 6, 7, 8, 9, 10);
const SENT_AT = new Date(NOW).toISOString();

describe.skipIf(!redis.available)("posts over Redis", () => {
  it("stores, logs and pages a v1 chat as the same bytes as before v2", async () => {
    const prefix = `posts-${++prefixes}:`;
    const t = await startEngine(redis.url(), prefix, { now: () => NOW });
    const raw = new RedisClient(redis.url());
    try {
      await call((d) => t.engine.load("r", d));
      const seq = await post(t, conn("ann"), "r", 'say "hi" \\ é 😀');
      await t.engine.quiesce();
      const wire = `{"type":"chat","room":"r","seq":${seq},"nick":"ann","text":"say \\"hi\\" \\\\ é 😀","sentAt":"${SENT_AT}"}`;
      const [entry] = t.sink.chats("r");
      expect(entry?.wire).toBe(wire);
      expect(JSON.stringify(entry?.msg)).toBe(wire);
      expect(await raw.send("ZRANGE", [`${prefix}room:r:msgs`, "0", "-1"])).toStrictEqual([wire]);
      const page = await call<Page>((d) => t.engine.history("r", 100, 10, d));
      expect(page.messages.map((m) => JSON.stringify(m))).toStrictEqual([wire]);
      // Nothing of v2's per-user zsets for a v1 chat.
      expect(await raw.send("KEYS", [`${prefix}room:r:own:*`])).toStrictEqual([]);
    } finally {
      raw.close();
      await t.engine.stop();
    }
  });

  it("carries a v2 post's fields to the log and to history, each only when it applies", async () => {
    const prefix = `posts-${++prefixes}:`;
    const t = await startEngine(redis.url(), prefix, { now: () => NOW });
    try {
      await call((d) => t.engine.load("r", d));
      const ann = conn("ann", "u-ann");
      const full = await post(t, ann, "r", "waves at @bob", {
        userId: "u-ann",
        kind: "action",
        replyTo: 1,
        mentions: ["bob"],
        mentionIds: ["u-bob"],
      });
      const plain = await post(t, ann, "r", "plain", { userId: "u-ann", mentions: [], mentionIds: [] });
      await t.engine.quiesce();
      const expected = [
        {
          type: "chat",
          room: "r",
          seq: full,
          nick: "ann",
          text: "waves at @bob",
          sentAt: SENT_AT,
          userId: "u-ann",
          kind: "action",
          replyTo: 1,
          mentions: ["bob"],
        },
        { type: "chat", room: "r", seq: plain, nick: "ann", text: "plain", sentAt: SENT_AT, userId: "u-ann" },
      ];
      const logged = t.sink.chats("r");
      expect(logged.map((e) => e.msg)).toStrictEqual(expected as never);
      // The stored JSON has v2's chat message's fields in its order: v1's, then userId, kind, replyTo, mentions.
      expect(logged.map((e) => e.wire)).toStrictEqual(expected.map((m) => JSON.stringify(m)));
      const page = await call<Page>((d) => t.engine.history("r", 100, 10, d));
      expect(page.messages).toStrictEqual(expected as never);
    } finally {
      await t.engine.stop();
    }
  });

  it("takes a v2 user's retry with the same id from any of its connections as the same post", async () => {
    const t = await startEngine(redis.url(), `posts-${++prefixes}:`);
    try {
      const first = conn("ann", "u-ann");
      const second = conn("ann", "u-ann");
      t.engine.chat(first, "r", "once", "id-1", { userId: "u-ann" });
      await t.engine.quiesce();
      t.engine.chat(second, "r", "once", "id-1", { userId: "u-ann" });
      t.engine.chat(conn("bob", "u-bob"), "r", "other user", "id-1", { userId: "u-bob" });
      await t.engine.quiesce();
      expect(t.sink.commits.get(`${first.id}/r/id-1`)).toBe(1);
      expect(t.sink.commits.get(`${second.id}/r/id-1`)).toBe(1);
      expect(t.sink.chats("r").length).toBe(0); // not loaded here: nothing delivered
      const page = await call<Page>((d) => t.engine.history("r", 100, 10, d));
      expect(page.messages.map((m) => [m.seq, m.userId])).toStrictEqual([
        [1, "u-ann"],
        [2, "u-bob"],
      ]);
    } finally {
      await t.engine.stop();
    }
  });
});
