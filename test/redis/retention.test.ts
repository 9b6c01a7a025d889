/** RETENTION_MAX_MESSAGES over Redis: a room's history keeps its newest messages, and seqs go on. */
import { afterEach, describe, expect, it } from "bun:test";
import type { ChatMessage } from "../../protocol";
import { closeAllClients, connect } from "../support/test-client";
import { startTestServerOn, stopAllServers } from "../support/test-server";
import { privateRedis } from "./support/redis-server";

const redis = privateRedis();
afterEach(async () => {
  await closeAllClients();
  await stopAllServers();
});

describe.skipIf(!redis.available)("retention over Redis", () => {
  it("keeps the newest RETENTION_MAX_MESSAGES of a room, in history and over HTTP", async () => {
    const srv = startTestServerOn(
      { kind: "redis", url: redis.url() },
      { RETENTION_MAX_MESSAGES: "5", RATE_LIMIT: "0" },
    );
    const ann = await connect(srv.url, { room: "kept", nick: "ann" });
    await ann.post("m", 8);
    ann.send({ type: "history", limit: 50 });
    const page = await ann.next("history");
    expect(page.messages.map((m) => m.seq)).toEqual([4, 5, 6, 7, 8]);
    expect(page.hasMore).toBe(false);
    const res = await fetch(new URL("/api/rooms/kept/messages?limit=50", srv.url));
    const body = (await res.json()) as { messages: ChatMessage[] };
    expect(body.messages.map((m) => m.seq)).toEqual([4, 5, 6, 7, 8]);
    await ann.post("n", 1);
    ann.send({ type: "history", limit: 50 });
    expect((await ann.next("history")).messages.map((m) => m.seq)).toEqual([5, 6, 7, 8, 9]);
  });

  it("drops messages older than RETENTION_MAX_AGE_DAYS as the room's next chats are stored, keeping the newest", async () => {
    // One second, in days.
    const srv = startTestServerOn(
      { kind: "redis", url: redis.url(), partitions: 4 },
      { RETENTION_MAX_AGE_DAYS: String(1 / 86_400), RATE_LIMIT: "0" },
    );
    const ann = await connect(srv.url, { room: "aged", nick: "ann" });
    await ann.post("old", 3);
    await Bun.sleep(1200);
    // Until something is stored, nothing is trimmed (and the newest stays in any case).
    await ann.post("new", 2);
    ann.send({ type: "history", limit: 50 });
    const page = await ann.next("history");
    expect(page.messages.map((m) => m.text)).toEqual(["new-1", "new-2"]);
    const res = await fetch(new URL("/api/rooms/aged/messages?limit=50", srv.url));
    const body = (await res.json()) as { messages: ChatMessage[] };
    expect(body.messages.map((m) => m.seq)).toEqual([4, 5]);
    await Bun.sleep(1200);
    await ann.post("last", 1);
    ann.send({ type: "history", limit: 50 });
    expect((await ann.next("history")).messages.map((m) => m.seq)).toEqual([6]);
  });
});
