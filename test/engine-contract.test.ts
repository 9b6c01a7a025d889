// One contract, run against every engine: what the chat core relies on from LocalEngine and RedisEngine alike.

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "bun:test";
import { type ChatMessage, LIMITS, type PresenceEvent } from "../protocol";
import type {
  Claim,
  Done,
  Engine,
  EngineConn,
  EngineSink,
  EnterRequest,
  Page,
  RenameOutcome,
  RoomEntry,
  RoomSnapshot,
} from "../server/chat/engine";
import type { UserEvent } from "../server/chat/users";
import { LocalEngine } from "../server/engines/local/local-engine";
import { MemoryStore } from "../server/engines/local/memory-store";
import { RedisEngine } from "../server/engines/redis/redis-engine";
import { RedisProcess, redisAvailable } from "./redis/support/redis-server";

const RESUME_TTL_MS = 60_000;
/** For the expiry tests: short enough to wait out, long enough to outlast a few round trips. */
const SHORT_TTL_MS = 80;
/** Small, so one test can push an id out of the window. */
const DEDUPE_WINDOW = 3;

/** A log entry without the fields an engine may or may not fill in (`at`, `wire`, `sentAt`). */
type Shaped =
  | { n: number; kind: "chat"; seq: number; nick: string; text: string }
  | { n: number; kind: "presence"; event: PresenceEvent }
  | { n: number; kind: "typing"; from: string; wire: string }
  | { n: number; kind: "replaced"; conn: string }
  | { n: number; kind: "void" }
  | { n: number; kind: "change"; change: unknown }
  | { n: number; kind: "kick"; nick: string };

function shape(e: RoomEntry): Shaped {
  switch (e.kind) {
    case "chat":
      return { n: e.n, kind: "chat", seq: e.msg.seq, nick: e.msg.nick, text: e.msg.text };
    case "presence":
      return { n: e.n, kind: "presence", event: e.event };
    case "typing":
      return { n: e.n, kind: "typing", from: e.from, wire: e.wire };
    case "replaced":
      return { n: e.n, kind: "replaced", conn: e.conn };
    case "void":
      return { n: e.n, kind: "void" };
    case "change":
      return { n: e.n, kind: "change", change: e.change };
    case "kick":
      return { n: e.n, kind: "kick", nick: e.nick };
  }
}

const joined = (n: number, nick: string): Shaped => ({ n, kind: "presence", event: { event: "join", nick } });
const left = (n: number, nick: string): Shaped => ({ n, kind: "presence", event: { event: "leave", nick } });
const renamed = (n: number, from: string, nick: string): Shaped => ({
  n,
  kind: "presence",
  event: { event: "nick", from, nick },
});
const chatted = (n: number, seq: number, nick: string, text: string): Shaped => ({
  n,
  kind: "chat",
  seq,
  nick,
  text,
});

/** The users a replica would hold after applying these entries' presence events. */
function usersAfter(entries: readonly Shaped[]): string[] {
  const users = new Set<string>();
  for (const e of entries) {
    if (e.kind !== "presence") continue;
    const ev = e.event;
    if (ev.event === "join") users.add(ev.nick);
    else if (ev.event === "leave") users.delete(ev.nick);
    else {
      users.delete(ev.from);
      users.add(ev.nick);
    }
  }
  return [...users].sort();
}

interface Commit {
  conn: string;
  room: string;
  id: string | undefined;
  seq: number;
}

class RecordingSink implements EngineSink<EngineConn> {
  private readonly logs = new Map<string, RoomEntry[]>();
  readonly commits: Commit[] = [];
  readonly failures: Array<{ conn: string; id: string | undefined }> = [];
  readonly resyncs: Array<{ room: string; why: string }> = [];
  readonly evictions: string[] = [];
  readonly userEvents: Array<{ userId: string; event: UserEvent }> = [];

  user(userId: string, event: UserEvent): void {
    this.userEvents.push({ userId, event });
  }

  deliver(room: string, entries: readonly RoomEntry[]): void {
    const log = this.logs.get(room) ?? [];
    log.push(...entries);
    this.logs.set(room, log);
  }

  committed(conn: EngineConn, room: string, id: string | undefined, seq: number): void {
    this.commits.push({ conn: conn.id, room, id, seq });
  }

  failed(conn: EngineConn, id: string | undefined): void {
    this.failures.push({ conn: conn.id, id });
  }

  resync(room: string, why: string): void {
    this.resyncs.push({ room, why });
  }

  evict(conn: EngineConn, why: string): void {
    this.evictions.push(`${conn.id}: ${why}`);
  }

  /** Everything delivered for `room`, from entry `from` (an index into the log) on. */
  log(room: string, from = 0): Shaped[] {
    return (this.logs.get(room) ?? []).slice(from).map(shape);
  }

  /** The chats delivered for `room`, as the engine gave them. */
  chats(room: string): ChatMessage[] {
    return (this.logs.get(room) ?? []).flatMap((e) => (e.kind === "chat" ? [e.msg] : []));
  }
}

interface Harness {
  engine: Engine<EngineConn>;
  sink: RecordingSink;
  /** Makes everything pending happen: writes stored, every loaded room's log delivered. */
  settle(): Promise<void>;
  stop(): Promise<void>;
}

/** A callback API as a promise; a missing value is an error too, since every answer here has one. */
function answer<T>(call: (done: Done<T>) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    call((err, value) => {
      if (err !== undefined && err !== null) reject(err);
      else if (value === undefined) reject(new Error("answered without a value"));
      else resolve(value);
    });
  });
}

const conn = (id: string): EngineConn => ({ id, session: "", nick: "" });
const oneTo = (k: number): number[] => Array.from({ length: k }, (_, i) => i + 1);

interface EngineOptions {
  resumeTtlMs: number;
}

interface ContractOptions {
  skip?: boolean;
}

function contract(
  name: string,
  factory: (o: EngineOptions) => Promise<Harness>,
  options: ContractOptions = {},
): void {
  describe.skipIf(options.skip ?? false)(`engine contract: ${name}`, () => {
    let h: Harness;
    beforeEach(async () => {
      h = await factory({ resumeTtlMs: RESUME_TTL_MS });
    });
    afterEach(async () => {
      await h.stop();
      // No test here provokes one: a stray failure, resync or loss would otherwise hide in a pass.
      expect({ failed: h.sink.failures, resyncs: h.sink.resyncs, evicted: h.sink.evictions }).toEqual({
        failed: [],
        resyncs: [],
        evicted: [],
      });
    });

    /**
     * A room's snapshot, its `recent` as the core would see it: from the snapshot, or for an engine
     * that reads welcome pages from its storage, the newest sinceMax messages up to its lastSeq.
     */
    const withRecent = (room: string, snap: RoomSnapshot): RoomSnapshot => {
      const pages = h.engine.pages;
      if (!pages) return snap;
      expect(snap.recent).toEqual([]);
      const since = Math.max(0, snap.lastSeq - LIMITS.sinceMax);
      return { ...snap, recent: pages.page(room, since, snap.lastSeq).messages };
    };
    const load = async (room: string): Promise<RoomSnapshot> =>
      withRecent(room, await answer<RoomSnapshot>((done) => h.engine.load(room, done)));
    const history = (room: string, before: number, limit: number) =>
      answer<Page>((done) => h.engine.history(room, before, limit, done));
    const seqs = (page: Page) => page.messages.map((m) => m.seq);

    /** Enters as the core does: the claim's nick and session become the connection's. */
    async function enter(c: EngineConn, req: EnterRequest): Promise<Claim> {
      const claim = await answer<Claim>((done) => h.engine.enter(c, req, done));
      c.session = claim.session;
      c.nick = claim.nick;
      return claim;
    }

    /** A new connection in `room`, wanting `nick`. */
    async function entered(id: string, room: string, nick?: string): Promise<EngineConn> {
      const c = conn(id);
      await enter(c, { room, wanted: nick });
      return c;
    }

    /** Renames as the core does: the connection takes the nick only on "ok". */
    async function rename(c: EngineConn, room: string, nick: string): Promise<RenameOutcome> {
      const outcome = await answer<RenameOutcome>((done) => h.engine.rename(c, room, nick, done));
      if (outcome === "ok") c.nick = nick;
      return outcome;
    }

    async function settled<T>(value: T): Promise<T> {
      await h.settle();
      return value;
    }

    describe("load", () => {
      it("gives an unused room an empty snapshot and delivers nothing for it", async () => {
        const { epoch, owners, lastRev, topic, ...rest } = await load("lobby");
        expect(rest).toEqual({ lastSeq: 0, lastN: 0, users: [], recent: [] });
        expect([lastRev ?? 0, topic ?? ""]).toEqual([0, ""]);
        expect([...(owners ?? [])]).toEqual([]);
        // A room's history generation stays what it was from one load to the next.
        h.engine.unload("lobby");
        expect((await load("lobby")).epoch).toBe(epoch);
        expect(epoch).toBeDefined();
        await h.settle();
        expect(h.sink.log("lobby")).toEqual([]);
      });

      it("gives a room with traffic, loaded again, a snapshot consistent with what was delivered", async () => {
        await load("lobby");
        const a = await entered("a", "lobby", "alice");
        const b = await entered("b", "lobby", "bob");
        const c = await entered("c", "lobby", "carol");
        h.engine.chat(a, "lobby", "one", "a1");
        h.engine.chat(b, "lobby", "two", undefined);
        expect(await rename(b, "lobby", "bobby")).toBe("ok");
        h.engine.typing(c, "lobby", '{"type":"typing"}');
        h.engine.leave(c, "lobby", true);
        h.engine.chat(a, "lobby", "three", "a2");
        await h.settle();
        const delivered = h.sink.log("lobby");

        h.engine.unload("lobby");
        const snap = await load("lobby");
        expect(snap.lastN).toBe(delivered.at(-1)?.n ?? -1);
        expect(snap.lastSeq).toBe(3);
        expect([...snap.users].sort()).toEqual(usersAfter(delivered));
        expect([...snap.users].sort()).toEqual(["alice", "bobby"]);
        expect(snap.recent).toEqual(h.sink.chats("lobby"));

        // The log goes on right after the snapshot: nothing delivered again, nothing skipped.
        h.engine.chat(b, "lobby", "four", undefined);
        await h.settle();
        expect(h.sink.log("lobby", delivered.length)).toEqual([chatted(snap.lastN + 1, 4, "bobby", "four")]);
      });

      it("keeps an emptied room's messages, and its log goes on from the snapshot", async () => {
        await load("lobby");
        const a = await entered("a", "lobby", "alice");
        h.engine.chat(a, "lobby", "one", undefined);
        h.engine.chat(a, "lobby", "two", undefined);
        h.engine.leave(a, "lobby", true);
        await h.settle();
        const before = h.sink.log("lobby").length;

        h.engine.unload("lobby");
        const snap = await load("lobby");
        // lastN may start again once no one follows an empty room (the local engine forgets it):
        // what must hold is that the next entry follows the snapshot.
        expect(snap.lastSeq).toBe(2);
        expect(snap.users).toEqual([]);
        expect(snap.recent.map((m) => [m.seq, m.nick, m.text])).toEqual([
          [1, "alice", "one"],
          [2, "alice", "two"],
        ]);
        const b = conn("b");
        const claim = await enter(b, { room: "lobby", wanted: "bob" });
        expect(claim.at).toBe(snap.lastN + 1);
        h.engine.chat(b, "lobby", "three", undefined);
        await h.settle();
        expect(h.sink.log("lobby", before)).toEqual([
          joined(snap.lastN + 1, "bob"),
          chatted(snap.lastN + 2, 3, "bob", "three"),
        ]);
      });

      it("answers a load with writes pending with a snapshot the log continues without gap or overlap", async () => {
        await load("lobby");
        const a = await entered("a", "lobby", "alice");
        await h.settle();
        h.engine.unload("lobby");
        h.engine.chat(a, "lobby", "one", undefined);
        h.engine.typing(a, "lobby", "t");
        h.engine.chat(a, "lobby", "two", undefined);
        // Entries delivered before the snapshot's answer are ones the replica is not there to take.
        let answeredAt = -1;
        const snap = withRecent(
          "lobby",
          await answer<RoomSnapshot>((done) =>
            h.engine.load("lobby", (err, value) => {
              answeredAt = h.sink.log("lobby").length;
              done(err, value);
            }),
          ),
        );
        h.engine.chat(a, "lobby", "three", undefined);
        await h.settle();
        const later = h.sink.log("lobby", answeredAt).filter((e) => e.n > snap.lastN);
        expect(later.map((e) => e.n)).toEqual(oneTo(later.length).map((i) => snap.lastN + i));
        const texts = later.flatMap((e) => (e.kind === "chat" ? [e.text] : []));
        expect([...snap.recent.map((m) => m.text), ...texts]).toEqual(["one", "two", "three"]);
        expect(snap.lastSeq).toBe(snap.recent.at(-1)?.seq ?? 0);
      });

      it("keeps only the newest LIMITS.sinceMax messages in recent, ascending", async () => {
        await load("lobby");
        const a = await entered("a", "lobby", "alice");
        for (let i = 1; i <= 505; i++) h.engine.chat(a, "lobby", `m${i}`, undefined);
        await h.settle();
        h.engine.unload("lobby");
        const snap = await load("lobby");
        expect(snap.lastSeq).toBe(505);
        expect(snap.recent.length).toBe(500);
        expect(snap.recent[0]?.seq).toBe(6);
        expect(snap.recent.at(-1)?.seq).toBe(505);
      });
    });

    describe("enter", () => {
      it("claims the wanted nickname and logs its join as entry number `at`", async () => {
        await load("lobby");
        const a = conn("a");
        const claim = await enter(a, { room: "lobby", wanted: "alice" });
        expect(claim.nick).toBe("alice");
        expect(claim.session).not.toBe("");
        await h.settle();
        expect(h.sink.log("lobby")).toEqual([joined(claim.at, "alice")]);
        expect(claim.at).toBe(1);
      });

      it("gives a nickname held in another case its first free variant: NICK-2, then NICK-3", async () => {
        await load("lobby");
        const claims = [];
        claims.push(await enter(conn("a"), { room: "lobby", wanted: "alice" }));
        claims.push(await enter(conn("b"), { room: "lobby", wanted: "ALICE" }));
        claims.push(await enter(conn("c"), { room: "lobby", wanted: "Alice" }));
        expect(claims.map((c) => c.nick)).toEqual(["alice", "ALICE-2", "Alice-3"]);
        expect(new Set(claims.map((c) => c.session)).size).toBe(3);
        await h.settle();
        expect(h.sink.log("lobby")).toEqual([
          joined(claims[0]?.at ?? -1, "alice"),
          joined(claims[1]?.at ?? -1, "ALICE-2"),
          joined(claims[2]?.at ?? -1, "Alice-3"),
        ]);
      });

      it("keeps counting variants past sixteen holders of a nickname", async () => {
        await load("lobby");
        for (let i = 1; i <= 16; i++) await enter(conn(`c${i}`), { room: "lobby", wanted: "x" });
        expect((await enter(conn("c17"), { room: "lobby", wanted: "X" })).nick).toBe("X-17");
      });

      it("claims the wanted nickname when it is also the fixed one, and a guest name without one", async () => {
        await load("lobby");
        const fixed = await enter(conn("a"), { room: "lobby", wanted: "carol", fixedNick: "carol" });
        expect(fixed.nick).toBe("carol");
        expect((await enter(conn("b"), { room: "lobby", fixedNick: "dave" })).nick).toMatch(/^guest-\d+$/);
      });

      it("never gives connections entering at the same time the same nickname", async () => {
        await load("lobby");
        const claims = await Promise.all(
          ["a", "b", "c"].map((id) => enter(conn(id), { room: "lobby", wanted: "alice" })),
        );
        expect(claims.map((c) => c.nick).sort()).toEqual(["alice", "alice-2", "alice-3"]);
        expect(claims.map((c) => c.at).sort()).toEqual([1, 2, 3]);
      });

      it("keeps a variant of a nickname at the length limit within the limit", async () => {
        await load("lobby");
        const long = "n".repeat(LIMITS.nickMax);
        expect((await enter(conn("a"), { room: "lobby", wanted: long })).nick).toBe(long);
        const variant = (await enter(conn("b"), { room: "lobby", wanted: long })).nick;
        expect(variant).toBe(`${"n".repeat(LIMITS.nickMax - 2)}-2`);
      });

      it("claims the same nickname in two rooms independently", async () => {
        await load("lobby");
        await load("kitchen");
        expect((await enter(conn("a"), { room: "lobby", wanted: "alice" })).nick).toBe("alice");
        expect((await enter(conn("b"), { room: "kitchen", wanted: "alice" })).nick).toBe("alice");
      });

      it("gives a connection without a wanted nickname a guest-N name no one holds", async () => {
        await load("lobby");
        await enter(conn("a"), { room: "lobby", wanted: "guest-1" });
        const b = await enter(conn("b"), { room: "lobby" });
        const c = await enter(conn("c"), { room: "lobby" });
        expect(b.nick).toMatch(/^guest-\d+$/);
        expect(c.nick).toMatch(/^guest-\d+$/);
        expect(new Set(["guest-1", b.nick, c.nick]).size).toBe(3);
        await h.settle();
        expect(h.sink.log("lobby", 1)).toEqual([joined(b.at, b.nick), joined(c.at, c.nick)]);
      });

      it("numbers each room's entries 1, 2, 3, ... without gaps, whatever their kind", async () => {
        await load("lobby");
        await load("kitchen");
        const a = await entered("a", "lobby", "alice");
        const b = await entered("b", "kitchen", "bob");
        h.engine.chat(a, "lobby", "hi", "a1");
        h.engine.typing(b, "kitchen", "t");
        const c = await entered("c", "lobby", "carol");
        expect(await rename(a, "lobby", "alicia")).toBe("ok");
        h.engine.chat(b, "kitchen", "yo", undefined);
        h.engine.leave(c, "lobby", true);
        h.engine.typing(a, "lobby", "t");
        await h.settle();
        expect(h.sink.log("lobby").map((e) => e.n)).toEqual(oneTo(6));
        expect(h.sink.log("kitchen").map((e) => e.n)).toEqual(oneTo(3));
      });

      it("keeps the moving connection's session, so its token resumes it in the new room", async () => {
        await load("lobby");
        await load("kitchen");
        const a = await entered("a", "lobby", "alice");
        const token = a.session;
        h.engine.leave(a, "lobby", false);
        const claim = await enter(a, { room: "kitchen", wanted: "alice" });
        expect(claim.session).toBe(token);
        h.engine.leave(a, "kitchen", true);
        await h.settle();
        const b = conn("b");
        const resumed = await enter(b, { room: "kitchen", resume: token, wanted: "zed" });
        expect(resumed.nick).toBe("alice");
        // A resume hands out a new token: the one it came with stops working.
        expect(resumed.session).not.toBe(token);
        expect((await enter(conn("c"), { room: "kitchen", resume: token, wanted: "zed" })).nick).toBe("zed");
      });
    });

    describe("chat", () => {
      it("delivers chats with an id as seq 1, 2, ... and commits each to its sender with its seq", async () => {
        await load("lobby");
        const a = await entered("a", "lobby", "alice");
        h.engine.chat(a, "lobby", "hello", "m1");
        h.engine.chat(a, "lobby", "again", "m2");
        await h.settle();
        expect(h.sink.log("lobby", 1)).toEqual([
          chatted(2, 1, "alice", "hello"),
          chatted(3, 2, "alice", "again"),
        ]);
        const [first] = h.sink.chats("lobby");
        expect(first).toMatchObject({ type: "chat", room: "lobby", seq: 1 });
        expect(Number.isNaN(Date.parse(first?.sentAt ?? ""))).toBe(false);
        expect(h.sink.commits).toEqual([
          { conn: "a", room: "lobby", id: "m1", seq: 1 },
          { conn: "a", room: "lobby", id: "m2", seq: 2 },
        ]);
      });

      it("does not store an id sent again: the retry is committed with the first seq", async () => {
        await load("lobby");
        const a = await entered("a", "lobby", "alice");
        h.engine.chat(a, "lobby", "hello", "m1");
        await h.settle();
        h.engine.chat(a, "lobby", "hello (retry)", "m1");
        await h.settle();
        expect(h.sink.chats("lobby").map((m) => m.text)).toEqual(["hello"]);
        expect(h.sink.commits.map((c) => [c.id, c.seq])).toEqual([
          ["m1", 1],
          ["m1", 1],
        ]);
        expect(seqs(await history("lobby", 100, 10))).toEqual([1]);
      });

      it("stores an id sent twice in the same turn once, and commits both with that seq", async () => {
        await load("lobby");
        const a = await entered("a", "lobby", "alice");
        h.engine.chat(a, "lobby", "hello", "m1");
        h.engine.chat(a, "lobby", "hello (retry)", "m1");
        await h.settle();
        expect(h.sink.chats("lobby").map((m) => [m.seq, m.text])).toEqual([[1, "hello"]]);
        expect(h.sink.commits.map((c) => [c.id, c.seq])).toEqual([
          ["m1", 1],
          ["m1", 1],
        ]);
      });

      it("delivers a chat without an id and commits it too, with no id", async () => {
        await load("lobby");
        const a = await entered("a", "lobby", "alice");
        h.engine.chat(a, "lobby", "hello", undefined);
        h.engine.chat(a, "lobby", "hello", undefined);
        await h.settle();
        // Without an id nothing is deduplicated: the same text twice is two messages.
        expect(h.sink.log("lobby", 1)).toEqual([
          chatted(2, 1, "alice", "hello"),
          chatted(3, 2, "alice", "hello"),
        ]);
        expect(h.sink.commits).toEqual([
          { conn: "a", room: "lobby", id: undefined, seq: 1 },
          { conn: "a", room: "lobby", id: undefined, seq: 2 },
        ]);
      });

      it("scopes ids by session and room: another session's or room's same id is a new message", async () => {
        await load("lobby");
        await load("kitchen");
        const a = await entered("a", "lobby", "alice");
        const b = await entered("b", "lobby", "bob");
        h.engine.chat(a, "lobby", "from alice", "m1");
        h.engine.chat(b, "lobby", "from bob", "m1");
        await h.settle();
        h.engine.leave(a, "lobby", false);
        await enter(a, { room: "kitchen", wanted: "alice" });
        h.engine.chat(a, "kitchen", "alice in the kitchen", "m1");
        await h.settle();
        expect(h.sink.chats("lobby").map((m) => [m.seq, m.text])).toEqual([
          [1, "from alice"],
          [2, "from bob"],
        ]);
        expect(h.sink.chats("kitchen").map((m) => [m.seq, m.text])).toEqual([[1, "alice in the kitchen"]]);
        expect(h.sink.commits).toEqual([
          { conn: "a", room: "lobby", id: "m1", seq: 1 },
          { conn: "b", room: "lobby", id: "m1", seq: 2 },
          { conn: "a", room: "kitchen", id: "m1", seq: 1 },
        ]);
      });

      it("remembers only the last dedupeWindow ids of a session", async () => {
        await load("lobby");
        const a = await entered("a", "lobby", "alice");
        for (let i = 1; i <= DEDUPE_WINDOW + 1; i++) h.engine.chat(a, "lobby", `m${i}`, `m${i}`);
        await h.settle();
        h.engine.chat(a, "lobby", "m1 again", "m1");
        h.engine.chat(a, "lobby", "last again", `m${DEDUPE_WINDOW + 1}`);
        await h.settle();
        const last = DEDUPE_WINDOW + 1;
        expect(h.sink.chats("lobby").map((m) => m.text)).toEqual([
          ...oneTo(last).map((i) => `m${i}`),
          "m1 again",
        ]);
        // A retry may be answered at once, before the new message is stored: compare by id.
        const answers = h.sink.commits.slice(last).map((c) => [c.id, c.seq]);
        expect(answers.sort()).toEqual([
          ["m1", last + 1],
          [`m${last}`, last],
        ]);
      });

      it("keeps one connection's chats, typing, rename and leave in the order they were made", async () => {
        await load("lobby");
        const a = await entered("a", "lobby", "alice");
        h.engine.chat(a, "lobby", "x", "x");
        h.engine.typing(a, "lobby", "t");
        h.engine.chat(a, "lobby", "y", undefined);
        expect(await rename(a, "lobby", "al")).toBe("ok");
        h.engine.chat(a, "lobby", "z", "z");
        h.engine.leave(a, "lobby", true);
        await h.settle();
        expect(h.sink.log("lobby")).toEqual([
          joined(1, "alice"),
          chatted(2, 1, "alice", "x"),
          { n: 3, kind: "typing", from: "a", wire: "t" },
          chatted(4, 2, "alice", "y"),
          renamed(5, "alice", "al"),
          chatted(6, 3, "al", "z"),
          left(7, "al"),
        ]);
      });
    });

    describe("rename", () => {
      it("is 'ok' to a free nickname: logs a nick event and frees the old nickname", async () => {
        await load("lobby");
        const a = await entered("a", "lobby", "alice");
        expect(await settled(await rename(a, "lobby", "alicia"))).toBe("ok");
        expect(h.sink.log("lobby", 1)).toEqual([renamed(2, "alice", "alicia")]);
        expect((await enter(conn("b"), { room: "lobby", wanted: "alice" })).nick).toBe("alice");
        expect((await enter(conn("c"), { room: "lobby", wanted: "ALICIA" })).nick).toBe("ALICIA-2");
      });

      it("is 'taken' to a nickname another connection holds, in any case, and logs nothing", async () => {
        await load("lobby");
        await entered("a", "lobby", "alice");
        const b = await entered("b", "lobby", "bob");
        expect(await settled(await rename(b, "lobby", "ALICE"))).toBe("taken");
        expect(b.nick).toBe("bob");
        expect(h.sink.log("lobby", 2)).toEqual([]);
      });

      it("lets only one of two renames to the same nickname at the same time succeed", async () => {
        await load("lobby");
        const a = await entered("a", "lobby", "alice");
        const b = await entered("b", "lobby", "bob");
        const outcomes = await Promise.all([rename(a, "lobby", "zed"), rename(b, "lobby", "ZED")]);
        expect([...outcomes].sort()).toEqual(["ok", "taken"]);
        await h.settle();
        expect(h.sink.log("lobby", 2).length).toBe(1);
      });

      it("is 'gone' for a connection that left, and logs nothing", async () => {
        await load("lobby");
        const a = await entered("a", "lobby", "alice");
        h.engine.leave(a, "lobby", true);
        await h.settle();
        expect(await settled(await rename(a, "lobby", "alicia"))).toBe("gone");
        expect(h.sink.log("lobby", 2)).toEqual([]);
      });

      it("is 'ok' for a change of case only of one's own nickname", async () => {
        await load("lobby");
        const a = await entered("a", "lobby", "alice");
        expect(await settled(await rename(a, "lobby", "Alice"))).toBe("ok");
        expect(h.sink.log("lobby", 1)).toEqual([renamed(2, "alice", "Alice")]);
        expect((await enter(conn("b"), { room: "lobby", wanted: "alice" })).nick).toBe("alice-2");
      });
    });

    describe("leave", () => {
      it("logs a leave with the leaver's nickname and frees it", async () => {
        await load("lobby");
        const a = await entered("a", "lobby", "alice");
        h.engine.leave(a, "lobby", false);
        await h.settle();
        expect(h.sink.log("lobby", 1)).toEqual([left(2, "alice")]);
        expect((await enter(conn("b"), { room: "lobby", wanted: "alice" })).nick).toBe("alice");
      });

      it("logs nothing for a connection that no longer holds its claim", async () => {
        await load("lobby");
        const a = await entered("a", "lobby", "alice");
        h.engine.leave(a, "lobby", true);
        await h.settle();
        h.engine.leave(a, "lobby", true);
        await h.settle();
        expect(h.sink.log("lobby")).toEqual([joined(1, "alice"), left(2, "alice")]);
      });
    });

    describe("resume", () => {
      it("takes a session still in the room over: same nickname, a 'replaced' entry, no join or leave", async () => {
        await load("lobby");
        const a = await entered("a", "lobby", "alice");
        await h.settle();
        const b = conn("b");
        const claim = await settled(await enter(b, { room: "lobby", resume: a.session, wanted: "zed" }));
        expect({ nick: claim.nick, at: claim.at }).toEqual({ nick: "alice", at: 2 });
        expect(claim.session).not.toBe(a.session);
        expect(h.sink.log("lobby", 1)).toEqual([{ n: 2, kind: "replaced", conn: "a" }]);
        expect(await h.engine.roomList()).toEqual([{ room: "lobby", users: 1 }]);
      });

      it("leaves the replaced connection with nothing: its leave logs nothing, its rename is 'gone'", async () => {
        await load("lobby");
        const a = await entered("a", "lobby", "alice");
        const b = conn("b");
        await enter(b, { room: "lobby", resume: a.session });
        await h.settle();
        h.engine.leave(a, "lobby", true);
        await h.settle();
        expect(await rename(a, "lobby", "eve")).toBe("gone");
        h.engine.chat(b, "lobby", "still here", "b1");
        await h.settle();
        expect(h.sink.log("lobby", 2)).toEqual([chatted(3, 1, "alice", "still here")]);
        expect(await h.engine.roomList()).toEqual([{ room: "lobby", users: 1 }]);
      });

      it("gives an ended session's nickname back with a join", async () => {
        await load("lobby");
        const a = await entered("a", "lobby", "alice");
        h.engine.leave(a, "lobby", true);
        await h.settle();
        const b = conn("b");
        const claim = await settled(await enter(b, { room: "lobby", resume: a.session, wanted: "zed" }));
        expect(claim.nick).toBe("alice");
        expect(claim.session).not.toBe(a.session);
        expect(h.sink.log("lobby", 2)).toEqual([joined(claim.at, "alice")]);
        expect(claim.at).toBe(3);
      });

      it("gives the first free variant when someone else took the nickname meanwhile", async () => {
        await load("lobby");
        const a = await entered("a", "lobby", "alice");
        h.engine.leave(a, "lobby", true);
        await h.settle();
        await entered("c", "lobby", "ALICE");
        const b = conn("b");
        expect((await enter(b, { room: "lobby", resume: a.session })).nick).toBe("alice-2");
      });

      it("takes over the nickname the session holds now, after a rename", async () => {
        await load("lobby");
        const a = await entered("a", "lobby", "alice");
        expect(await rename(a, "lobby", "alicia")).toBe("ok");
        const b = conn("b");
        const claim = await settled(await enter(b, { room: "lobby", resume: a.session }));
        expect(claim.nick).toBe("alicia");
        expect(h.sink.log("lobby", 2)).toEqual([{ n: claim.at, kind: "replaced", conn: "a" }]);
      });

      it("remembers the session's chat ids: a retry after resuming is committed, not stored again", async () => {
        await load("lobby");
        const a = await entered("a", "lobby", "alice");
        h.engine.chat(a, "lobby", "hello", "m1");
        await h.settle();
        const b = conn("b");
        await enter(b, { room: "lobby", resume: a.session });
        h.engine.chat(b, "lobby", "hello (retry)", "m1");
        await h.settle();
        h.engine.leave(b, "lobby", true);
        const c = conn("c");
        await enter(c, { room: "lobby", resume: b.session });
        h.engine.chat(c, "lobby", "hello (again)", "m1");
        await h.settle();
        expect(h.sink.chats("lobby").map((m) => m.text)).toEqual(["hello"]);
        expect(h.sink.commits.map((x) => [x.conn, x.seq])).toEqual([
          ["a", 1],
          ["b", 1],
          ["c", 1],
        ]);
      });

      it("ignores a token from another room: a new session under the usual nickname rules", async () => {
        await load("lobby");
        await load("kitchen");
        const a = await entered("a", "lobby", "alice");
        const b = conn("b");
        const wanting = await enter(b, { room: "kitchen", resume: a.session, wanted: "bob" });
        expect(wanting.nick).toBe("bob");
        expect(wanting.session).not.toBe(a.session);
        const c = conn("c");
        const guest = await enter(c, { room: "kitchen", resume: a.session });
        expect(guest.nick).toMatch(/^guest-\d+$/);
        expect(guest.session).not.toBe(a.session);
        await h.settle();
        expect(h.sink.log("lobby")).toEqual([joined(1, "alice")]);
        expect(h.sink.log("kitchen")).toEqual([joined(1, "bob"), joined(2, guest.nick)]);
      });

      it("ignores a token no session has", async () => {
        await load("lobby");
        const claim = await enter(conn("b"), { room: "lobby", resume: "no-such-token", wanted: "bob" });
        expect(claim.nick).toBe("bob");
        expect(claim.session).not.toBe("no-such-token");
      });

      it("does not resume a session under another nickname for a fixed nickname", async () => {
        await load("lobby");
        const a = await entered("a", "lobby", "alice");
        const b = conn("b");
        const claim = await enter(b, {
          room: "lobby",
          resume: a.session,
          wanted: "carol",
          fixedNick: "carol",
        });
        expect(claim.nick).toBe("carol");
        expect(claim.session).not.toBe(a.session);
        const c = conn("c");
        const same = await enter(c, {
          room: "lobby",
          resume: a.session,
          wanted: "ALICE",
          fixedNick: "ALICE",
        });
        expect(same.nick).toBe("alice");
        expect(same.session).not.toBe(a.session);
        await h.settle();
        expect(h.sink.log("lobby")).toEqual([
          joined(1, "alice"),
          joined(2, "carol"),
          { n: 3, kind: "replaced", conn: "a" },
        ]);
      });
    });

    describe("session expiry", () => {
      beforeEach(async () => {
        // A resume window short enough to wait out: a fresh engine replaces the default one.
        await h.stop();
        h = await factory({ resumeTtlMs: SHORT_TTL_MS });
      });
      const waitOut = () => Bun.sleep(SHORT_TTL_MS * 2);

      it("does not resume an ended session once resumeTtlMs has passed", async () => {
        await load("lobby");
        const a = await entered("a", "lobby", "alice");
        h.engine.leave(a, "lobby", true);
        await h.settle();
        await waitOut();
        const claim = await enter(conn("b"), { room: "lobby", resume: a.session, wanted: "zed" });
        expect(claim.nick).toBe("zed");
        expect(claim.session).not.toBe(a.session);
      });

      it("never expires a session held in a room, or left without ending", async () => {
        await load("lobby");
        const a = await entered("a", "lobby", "alice");
        const b = await entered("b", "lobby", "bob");
        h.engine.leave(b, "lobby", false);
        await h.settle();
        await waitOut();
        expect((await enter(conn("c"), { room: "lobby", resume: a.session })).nick).toBe("alice");
        expect((await enter(conn("d"), { room: "lobby", resume: b.session })).nick).toBe("bob");
      });

      it("does not start the expiry when a replaced connection leaves", async () => {
        await load("lobby");
        const a = await entered("a", "lobby", "alice");
        const b = conn("b");
        await enter(b, { room: "lobby", resume: a.session });
        h.engine.leave(a, "lobby", true);
        await h.settle();
        await waitOut();
        const claim = await settled(await enter(conn("c"), { room: "lobby", resume: b.session }));
        expect(claim.nick).toBe("alice");
        expect(h.sink.log("lobby").at(-1)).toEqual({ n: claim.at, kind: "replaced", conn: "b" });
      });
    });

    describe("typing, history and the room list", () => {
      it("logs typing as an entry from the connection id with the wire string as given, never stored", async () => {
        await load("lobby");
        const a = await entered("a", "lobby", "alice");
        const wire = JSON.stringify({ type: "typing", room: "lobby", nick: "alice" });
        h.engine.typing(a, "lobby", wire);
        await h.settle();
        expect(h.sink.log("lobby", 1)).toEqual([{ n: 2, kind: "typing", from: "a", wire }]);
        expect(await history("lobby", 100, 10)).toEqual({ messages: [], more: false });
      });

      it("gives the newest `limit` chats before a seq, ascending, with `more` when older exist", async () => {
        await load("lobby");
        const a = await entered("a", "lobby", "alice");
        for (let i = 1; i <= 5; i++) h.engine.chat(a, "lobby", `m${i}`, undefined);
        await h.settle();
        const page = await history("lobby", 6, 2);
        expect(page).toEqual({ messages: h.sink.chats("lobby").slice(3), more: true });
        const older = await history("lobby", 4, 3);
        expect([seqs(older), older.more]).toEqual([[1, 2, 3], false]);
        const fewer = await history("lobby", 3, 5);
        expect([seqs(fewer), fewer.more]).toEqual([[1, 2], false]);
        expect(await history("lobby", 1, 5)).toEqual({ messages: [], more: false });
        expect(await history("nowhere", 10, 5)).toEqual({ messages: [], more: false });
      });

      it("counts users per room, busiest first, and drops rooms no one is in", async () => {
        for (const room of ["big", "mid", "small", "emptied", "unused"]) await load(room);
        for (const id of ["b1", "b2", "b3"]) await entered(id, "big");
        for (const id of ["m1", "m2"]) await entered(id, "mid");
        await entered("s1", "small");
        const e = await entered("e1", "emptied");
        h.engine.leave(e, "emptied", true);
        await h.settle();
        expect(await h.engine.roomList()).toEqual([
          { room: "big", users: 3 },
          { room: "mid", users: 2 },
          { room: "small", users: 1 },
        ]);
      });
    });
  });
}

contract("local", async ({ resumeTtlMs }) => {
  const engine = new LocalEngine<EngineConn>({
    store: new MemoryStore(),
    resumeTtlMs,
    dedupeWindow: DEDUPE_WINDOW,
    schedule: () => {},
    timer: () => {},
  });
  const sink = new RecordingSink();
  engine.bind(sink);
  await engine.ready;
  return { engine, sink, settle: async () => engine.flush(false), stop: () => engine.stop() };
});

const available = redisAvailable();
let redis: RedisProcess | undefined;
beforeAll(async () => {
  if (available) redis = await RedisProcess.start();
});
afterAll(async () => {
  await redis?.stop();
});

let prefixes = 0;
contract(
  "redis",
  async ({ resumeTtlMs }) => {
    if (!redis) throw new Error("redis-server did not start");
    const engine = new RedisEngine<EngineConn>({
      url: redis.url,
      prefix: `contract-${++prefixes}:`,
      resumeTtlMs,
      dedupeWindow: DEDUPE_WINDOW,
      schedule: () => {},
    });
    const sink = new RecordingSink();
    engine.bind(sink);
    await engine.ready;
    return { engine, sink, settle: () => engine.quiesce(), stop: () => engine.stop() };
  },
  // RedisEngine.enter takes only req.wanted (or the resumed nick) as the nickname to claim, so a
  // fixed nickname alone gets a guest name; the core always passes it as `wanted` too.
  { skip: !available },
);
