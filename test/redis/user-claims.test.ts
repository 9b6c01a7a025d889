/**
 * v2 users' claims over Redis: one claim per room and user, shared by all its connections on every
 * process. Its first connection logs the join, its last the leave; a dead process takes its
 * connections out of the claims (the user leaves with its last live connection); a process swept
 * while it was only cut off puts its connections back.
 */
import { describe, expect, it } from "bun:test";
import { RedisClient } from "bun";
import { type Claim, NickTakenError, type RenameOutcome, type RoomSnapshot } from "../../server/chat/engine";
import { eventually } from "../support/timing";
import { call, conn, dieAbruptly, freeze, startEngine, type TestEngine } from "./support/engines";
import { privateRedis } from "./support/redis-server";

const redis = privateRedis();
let prefixes = 0;

async function pair(options = {}): Promise<{ a: TestEngine; b: TestEngine; prefix: string }> {
  const prefix = `claims-${++prefixes}:`;
  const [a, b] = await Promise.all([
    startEngine(redis.url(), prefix, options),
    startEngine(redis.url(), prefix, options),
  ]);
  return { a, b, prefix };
}

async function settle(...ts: TestEngine[]): Promise<void> {
  for (let round = 0; round < 2; round++) for (const t of ts) await t.engine.quiesce();
}

const load = (t: TestEngine, room: string) => call<RoomSnapshot>((d) => t.engine.load(room, d));
const enter = (t: TestEngine, c: ReturnType<typeof conn>, room: string, userId: string, nick: string) =>
  call<Claim>((d) => t.engine.enter(c, { room, user: { userId, nick } }, d));
const rename = (t: TestEngine, c: ReturnType<typeof conn>, room: string, nick: string) =>
  call<RenameOutcome>((d) => t.engine.rename(c, room, nick, d));

describe.skipIf(!redis.available)("a v2 user's claim over Redis", () => {
  it("is shared by its connections on two processes: the first logs the join, the last the leave", async () => {
    const { a, b } = await pair();
    try {
      await Promise.all([load(a, "r"), load(b, "r")]);
      const a1 = conn("ann", "u-ann");
      const a2 = conn("ann", "u-ann");
      const b1 = conn("ann", "u-ann");
      const first = await enter(a, a1, "r", "u-ann", "ann");
      expect(first.nick).toBe("ann");
      await settle(a, b);
      expect(first.at).toBe(b.sink.lastN("r"));
      for (const t of [a, b]) expect(t.sink.presence("r")).toStrictEqual(["join ann [u-ann]"]);

      // A chat in between: a later connection's claim is at the room's newest entry, past it.
      b.engine.chat(conn("vee"), "r", "hello", undefined);
      await settle(a, b);
      const second = await enter(b, b1, "r", "u-ann", "ann");
      const third = await enter(a, a2, "r", "u-ann", "ann");
      expect(second).toStrictEqual({ nick: "ann", session: "", at: b.sink.lastN("r") });
      expect(third.at).toBe(b.sink.lastN("r"));
      expect(second.at).toBe(first.at + 1);

      const snapshot = await load(b, "r");
      expect(snapshot.users).toStrictEqual(["ann"]);
      expect(snapshot.owners).toStrictEqual(new Map([["ann", "u-ann"]]));
      expect(await b.engine.roomList()).toStrictEqual([{ room: "r", users: 1 }]);

      a.engine.leave(a1, "r", true);
      b.engine.leave(b1, "r", true);
      await settle(a, b);
      for (const t of [a, b]) expect(t.sink.presence("r")).toStrictEqual(["join ann [u-ann]"]);
      a.engine.leave(a2, "r", true);
      await settle(a, b);
      for (const t of [a, b])
        expect(t.sink.presence("r")).toStrictEqual(["join ann [u-ann]", "leave ann [u-ann]"]);
      expect(await b.engine.roomList()).toStrictEqual([]);
      expect((await load(a, "r")).owners).toStrictEqual(new Map());
    } finally {
      await Promise.all([a.engine.stop(), b.engine.stop()]);
    }
  });

  it("fails with NickTakenError when anyone else holds the nick (a v1 connection or another user), changing nothing", async () => {
    const { a, b } = await pair();
    try {
      await Promise.all([load(a, "r"), load(b, "r")]);
      const v1 = conn("bob");
      await call<Claim>((d) => a.engine.enter(v1, { room: "r", wanted: "bob" }, d));
      await enter(a, conn("ann", "u-ann"), "r", "u-ann", "ann");
      await settle(a, b);
      const before = b.sink.presence("r");
      await expect(enter(b, conn("Bob", "u-bob"), "r", "u-bob", "Bob")).rejects.toBeInstanceOf(
        NickTakenError,
      );
      await expect(enter(b, conn("ANN", "u-other"), "r", "u-other", "ANN")).rejects.toBeInstanceOf(
        NickTakenError,
      );
      // A v1 connection asking for a v2 user's nick gets the next variant, as for any taken nick.
      const late = await call<Claim>((d) => b.engine.enter(conn("ann"), { room: "r", wanted: "ann" }, d));
      expect(late.nick).toBe("ann-2");
      await settle(a, b);
      expect(b.sink.presence("r")).toStrictEqual([...before, "join ann-2"]);
      expect((await load(b, "r")).owners).toStrictEqual(new Map([["ann", "u-ann"]]));
      // The user itself, asking under another nick, joins its claim as it stands.
      expect((await enter(b, conn("x", "u-ann"), "r", "u-ann", "annie")).nick).toBe("ann");
    } finally {
      await Promise.all([a.engine.stop(), b.engine.stop()]);
    }
  });

  it("is renamed by any of its connections, with one nick event naming the user", async () => {
    const { a, b } = await pair();
    try {
      await Promise.all([load(a, "r"), load(b, "r")]);
      const a1 = conn("ann", "u-ann");
      const b1 = conn("ann", "u-ann");
      await enter(a, a1, "r", "u-ann", "ann");
      await enter(b, b1, "r", "u-ann", "ann");
      await call<Claim>((d) => a.engine.enter(conn("cy"), { room: "r", wanted: "cy" }, d));
      expect(await rename(b, b1, "r", "anna")).toBe("ok");
      expect(await rename(a, a1, "r", "CY")).toBe("taken");
      expect(await rename(a, a1, "r", "anna")).toBe("ok");
      await settle(a, b);
      for (const t of [a, b])
        expect(t.sink.presence("r")).toStrictEqual(["join ann [u-ann]", "join cy", "nick ann->anna [u-ann]"]);
      expect((await load(a, "r")).owners).toStrictEqual(new Map([["anna", "u-ann"]]));
      // Its leave finds it under its new name; a connection that left may rename nothing.
      b.engine.leave(b1, "r", true);
      await settle(a, b);
      expect(await rename(b, b1, "r", "zed")).toBe("gone");
      a.engine.leave(a1, "r", true);
      await settle(a, b);
      expect(a.sink.presence("r").at(-1)).toBe("leave anna [u-ann]");
      expect(await rename(a, a1, "r", "zed")).toBe("gone");
    } finally {
      await Promise.all([a.engine.stop(), b.engine.stop()]);
    }
  });
});

describe.skipIf(!redis.available)("a process that dies with v2 connections", () => {
  it("leaves the claims: a user leaves only when its last live connection is gone", async () => {
    const { a, b, prefix } = await pair({ presenceTtlMs: 300 });
    const raw = new RedisClient(redis.url());
    try {
      await Promise.all([load(a, "r"), load(b, "r")]);
      const bAnn = conn("ann", "u-ann");
      await enter(a, conn("ann", "u-ann"), "r", "u-ann", "ann");
      await enter(b, bAnn, "r", "u-ann", "ann");
      await enter(a, conn("cy", "u-cy"), "r", "u-cy", "cy");
      await enter(a, conn("cy", "u-cy"), "r", "u-cy", "cy");
      await call<Claim>((d) => a.engine.enter(conn("vee"), { room: "r", wanted: "vee" }, d));
      await settle(a, b);
      const joined = ["join ann [u-ann]", "join cy [u-cy]", "join vee"];
      expect(b.sink.presence("r")).toStrictEqual(joined);

      await dieAbruptly(a);
      await eventually(() => b.sink.presence("r").length === 5, "the dead process's users to leave", 5000);
      expect(b.sink.presence("r").slice(3).sort()).toStrictEqual(["leave cy [u-cy]", "leave vee"]);
      expect((await load(b, "r")).owners).toStrictEqual(new Map([["ann", "u-ann"]]));
      expect(await raw.send("KEYS", [`${prefix}room:r:pc:${a.engine.procId}`])).toStrictEqual([]);
      expect(await raw.send("SMEMBERS", [`${prefix}room:r:uc:u-ann`])).toStrictEqual([
        `${b.engine.procId}|${bAnn.id}`,
      ]);

      b.engine.leave(bAnn, "r", true);
      await settle(b);
      expect(b.sink.presence("r").at(-1)).toBe("leave ann [u-ann]");
      expect(await b.engine.roomList()).toStrictEqual([]);
    } finally {
      raw.close();
      await b.engine.stop();
    }
  });

  it("swept while only cut off, puts its connections back: into a claim that stood, silently; a claim it alone held, with a join; a nick taken meanwhile, evicted", async () => {
    const { a, b } = await pair({ presenceTtlMs: 300 });
    try {
      await Promise.all([load(a, "r"), load(b, "r")]);
      const aAnn = conn("ann", "u-ann");
      const bAnn = conn("ann", "u-ann");
      const aCy = conn("cy", "u-cy");
      const aDan = conn("dan", "u-dan");
      await enter(a, aAnn, "r", "u-ann", "ann");
      await enter(b, bAnn, "r", "u-ann", "ann");
      await enter(a, aCy, "r", "u-cy", "cy");
      await enter(a, aDan, "r", "u-dan", "dan");
      await settle(a, b);

      const frozen = freeze(a);
      await eventually(() => b.sink.presence("r").length === 5, "a's users to be swept", 5000);
      expect(b.sink.presence("r").slice(3).sort()).toStrictEqual(["leave cy [u-cy]", "leave dan [u-dan]"]);
      // Meanwhile a v1 newcomer takes dan's nick.
      await call<Claim>((d) => b.engine.enter(conn("dan"), { room: "r", wanted: "dan" }, d));
      frozen.thaw();

      await eventually(() => a.sink.evictions.length === 1, "dan's connection to be evicted", 5000);
      expect(a.sink.evictions[0]).toStartWith(`${aDan.id}:`);
      await eventually(() => b.sink.presence("r").includes("join cy [u-cy]"), "cy to be back", 5000);
      await settle(a, b);
      expect(b.sink.presence("r").slice(5)).toStrictEqual(["join dan", "join cy [u-cy]"]);
      expect((await load(b, "r")).owners).toStrictEqual(
        new Map([
          ["ann", "u-ann"],
          ["cy", "u-cy"],
        ]),
      );

      // a's connection is part of ann's claim again: b's leaving is not ann's.
      b.engine.leave(bAnn, "r", true);
      await settle(a, b);
      expect(b.sink.presence("r").at(-1)).toBe("join cy [u-cy]");
      a.engine.leave(aAnn, "r", true);
      await settle(a, b);
      expect(b.sink.presence("r").at(-1)).toBe("leave ann [u-ann]");
    } finally {
      await Promise.all([a.engine.stop(), b.engine.stop()]);
    }
  });
});
