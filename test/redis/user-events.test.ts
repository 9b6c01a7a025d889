/**
 * UserStore.publish over Redis: an event reaches this process's sink at once and every other
 * process's through the events stream, each once and in the order published.
 */
import { describe, expect, it } from "bun:test";
import type { UserEvent } from "../../server/chat/users";
import { eventually } from "../support/timing";
import { startEngine, type TestEngine } from "./support/engines";
import { privateRedis } from "./support/redis-server";

const redis = privateRedis();
let prefixes = 0;

const events = (t: TestEngine) => t.sink.userEvents.map((e) => `${e.userId} ${JSON.stringify(e.event)}`);

describe.skipIf(!redis.available)("user events over Redis", () => {
  it("reach the publisher's sink at once and the other processes' through Redis, each once, in order", async () => {
    const prefix = `events-${++prefixes}:`;
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => startEngine(redis.url(), prefix)));
    const all = [a, b, c] as TestEngine[];
    try {
      const sent: Array<[string, UserEvent]> = [
        ["u1", { type: "read", room: "r", seq: 5 }],
        ["u2", { type: "joined", room: "~a.b", readSeq: 0, peer: "u3" }],
        ["u1", { type: "nick", nick: "Annie" }],
        ["u1", { type: "parted", room: "r" }],
        ["u2", { type: "revoked" }],
      ];
      (a as TestEngine).engine.users.publish(...(sent[0] as [string, UserEvent]));
      // Here at once, before any round trip.
      expect(events(a as TestEngine)).toStrictEqual([`u1 ${JSON.stringify(sent[0]?.[1])}`]);
      for (const [userId, event] of sent.slice(1)) (a as TestEngine).engine.users.publish(userId, event);
      const expected = sent.map(([userId, event]) => `${userId} ${JSON.stringify(event)}`);
      for (const t of all) await eventually(() => events(t).length === sent.length, "every event everywhere");
      for (const t of all) await t.engine.quiesce();
      for (const t of all) expect(events(t)).toStrictEqual(expected);
    } finally {
      await Promise.all(all.map((t) => t.engine.stop()));
    }
  });

  it("published by a process that started later reach one that started earlier, and the other way", async () => {
    const prefix = `events-${++prefixes}:`;
    const a = await startEngine(redis.url(), prefix);
    a.engine.users.publish("u0", { type: "read", room: "r", seq: 1 });
    await a.engine.quiesce();
    const b = await startEngine(redis.url(), prefix);
    try {
      // What was published before b started is not replayed to it.
      b.engine.users.publish("u1", { type: "read", room: "r", seq: 2 });
      a.engine.users.publish("u2", { type: "read", room: "r", seq: 3 });
      await eventually(() => a.sink.userEvents.length === 3 && b.sink.userEvents.length === 2, "both events");
      await Promise.all([a.engine.quiesce(), b.engine.quiesce()]);
      // (a heard its own u2 at once, b's u1 through Redis: no order between two publishers.)
      expect(a.sink.userEvents.map((e) => e.userId).sort()).toStrictEqual(["u0", "u1", "u2"]);
      expect(b.sink.userEvents.map((e) => e.userId)).toStrictEqual(["u1", "u2"]);
    } finally {
      await Promise.all([a.engine.stop(), b.engine.stop()]);
    }
  });
});
