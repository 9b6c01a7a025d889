/**
 * The contract of v2's UserStore (all of it but `publish`), as one suite any implementation runs:
 * `userStoreContract("SqliteStore", makeStore)` registers its describe/it blocks. Counts need posts,
 * which each engine stores its own way (the harness's `post`); a harness with `restart` also gets
 * the test that everything survives a restart.
 */
import { afterEach, beforeEach, describe, expect, it } from "bun:test";
import type { Done } from "../../server/chat/engine";
import type { Ban, CountQuery, Counts, JoinOutcome, UserRecord, UserStore } from "../../server/chat/users";

export type UserTablesUnderTest = Omit<UserStore, "publish">;

/** A post as the counts see it: its seq, its v2 author (null: a v1 post), the v2 users it mentions. */
export interface ContractPost {
  seq: number;
  userId: string | null;
  mentionIds?: string[];
}

export interface UserStoreHarness {
  store: UserTablesUnderTest;
  close(): Promise<void>;
  /** Closes the store and opens its storage again, as a restarted server would. */
  restart?(): Promise<UserStoreHarness>;
  /** Stores posts of a room, seqs ascending and above those it holds. */
  post(room: string, posts: readonly ContractPost[]): Promise<void>;
}

/** A callback call as a promise. */
export function call<T>(f: (done: Done<T>) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    f((err, value) => (err === undefined || err === null ? resolve(value as T) : reject(err)));
  });
}

/** The store's calls as promises. */
function api(s: UserTablesUnderTest) {
  return {
    identityKey: () => call<string>((d) => s.identityKey(d)),
    create: (id: string, nick: string) => call<void>((d) => s.create(id, nick, d)),
    load: (id: string) => call<UserRecord | undefined>((d) => s.load(id, d)),
    nicks: (ids: string[]) => call<Map<string, string>>((d) => s.nicks(ids, d)),
    revoke: (id: string) => call<boolean>((d) => s.revoke(id, d)),
    rename: (id: string, nick: string) => call<void>((d) => s.rename(id, nick, d)),
    join: (id: string, room: string, readSeq: number, max = 100, peer?: string) =>
      call<JoinOutcome>((d) =>
        s.join(id, peer === undefined ? { room, readSeq } : { room, readSeq, peer }, max, d),
      ),
    part: (id: string, room: string) => call<boolean>((d) => s.part(id, room, d)),
    read: (id: string, room: string, seq: number) =>
      call<number | undefined>((d) => s.read(id, room, seq, d)),
    counts: (id: string, queries: CountQuery[], cap = 1000) =>
      call<Counts[]>((d) => s.counts(id, queries, cap, d)),
    directRoom: (a: string, b: string, name: () => string) =>
      call<string>((d) => s.directRoom(a, b, name, d)),
    directPair: (room: string) => call<readonly [string, string] | undefined>((d) => s.directPair(room, d)),
    ban: (room: string, ban: Ban) => call<void>((d) => s.ban(room, ban, d)),
    unban: (room: string, key: string) => call<boolean>((d) => s.unban(room, key, d)),
    banned: (room: string, who: { userId?: string; nickKey?: string }, now: number) =>
      call<Ban | undefined>((d) => s.banned(room, who, now, d)),
  };
}

const sorted = (pair: readonly string[] | undefined) => (pair ? [...pair].sort() : pair);

/** `restarts`: the harness can restart its storage (a memory store cannot): the restart test runs. */
export function userStoreContract(
  name: string,
  makeStore: () => Promise<UserStoreHarness>,
  restarts = true,
): void {
  describe(`${name}: the UserStore contract`, () => {
    let h: UserStoreHarness;
    let u: ReturnType<typeof api>;
    // Names unique to each test, so a harness may share its storage between tests.
    let tag = "";
    const id = (s: string) => `${tag}${s}`;
    let runs = 0;

    beforeEach(async () => {
      tag = `t${++runs}-${Math.random().toString(36).slice(2, 8)}-`;
      h = await makeStore();
      u = api(h.store);
    });
    afterEach(async () => {
      await h.close();
    });

    const restart = async () => {
      if (!h.restart) throw new Error("no restart");
      h = await h.restart();
      u = api(h.store);
    };

    describe("identityKey", () => {
      it("is 32 random bytes in base64url, the same each time it is asked", async () => {
        const key = await u.identityKey();
        expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
        expect(await u.identityKey()).toBe(key);
      });
    });

    describe("users", () => {
      it("makes a user with its nick and no rooms, and leaves an existing one as it is", async () => {
        await u.create(id("ann"), "Ann");
        await u.create(id("ann"), "Other");
        expect(await u.load(id("ann"))).toStrictEqual({ userId: id("ann"), nick: "Ann", rooms: [] });
      });

      it("loads nothing for an unknown user", async () => {
        expect(await u.load(id("nobody"))).toBeUndefined();
      });

      it("answers the nicks of the users it knows and leaves the others out", async () => {
        await u.create(id("ann"), "Ann");
        await u.create(id("bob"), "Bob");
        const nicks = await u.nicks([id("bob"), id("nobody"), id("ann")]);
        expect([...nicks].sort()).toStrictEqual([
          [id("ann"), "Ann"],
          [id("bob"), "Bob"],
        ]);
        expect((await u.nicks([])).size).toBe(0);
      });

      it("renames a user: load and nicks answer the new nick", async () => {
        await u.create(id("ann"), "Ann");
        await u.rename(id("ann"), "Annie");
        expect((await u.load(id("ann")))?.nick).toBe("Annie");
        expect(await u.nicks([id("ann")])).toStrictEqual(new Map([[id("ann"), "Annie"]]));
      });

      it("revokes a user for good: once, not an unknown one; it stops loading, loses its rooms, keeps its nick", async () => {
        await u.create(id("ann"), "Ann");
        await u.create(id("bob"), "Bob");
        await u.join(id("ann"), id("lobby"), 3);
        await u.join(id("bob"), id("lobby"), 3);
        expect(await u.revoke(id("ann"))).toBe(true);
        expect(await u.revoke(id("ann"))).toBe(false);
        expect(await u.revoke(id("nobody"))).toBe(false);
        expect(await u.load(id("ann"))).toBeUndefined();
        await u.create(id("ann"), "Ann");
        expect(await u.load(id("ann"))).toBeUndefined();
        expect(await u.part(id("ann"), id("lobby"))).toBe(false);
        // Its posts still name it; others keep their rooms.
        expect(await u.nicks([id("ann")])).toStrictEqual(new Map([[id("ann"), "Ann"]]));
        expect((await u.load(id("bob")))?.rooms).toStrictEqual([{ room: id("lobby"), readSeq: 3 }]);
      });
    });

    describe("rooms", () => {
      beforeEach(async () => {
        await u.create(id("ann"), "Ann");
      });

      it("lists rooms in join order with their markers and peers; joining again changes nothing", async () => {
        expect(await u.join(id("ann"), id("b"), 5)).toBe("joined");
        expect(await u.join(id("ann"), id("a"), 0)).toBe("joined");
        expect(await u.join(id("ann"), id("~dm"), 2, 100, id("bob"))).toBe("joined");
        expect(await u.join(id("ann"), id("b"), 9)).toBe("member");
        expect((await u.load(id("ann")))?.rooms).toStrictEqual([
          { room: id("b"), readSeq: 5 },
          { room: id("a"), readSeq: 0 },
          { room: id("~dm"), readSeq: 2, peer: id("bob") },
        ]);
      });

      it("puts a room parted and joined again last, with its new marker", async () => {
        for (const room of ["a", "b", "c"]) await u.join(id("ann"), id(room), 1);
        expect(await u.part(id("ann"), id("a"))).toBe(true);
        expect(await u.join(id("ann"), id("a"), 7)).toBe("joined");
        expect((await u.load(id("ann")))?.rooms.map((r) => [r.room, r.readSeq])).toStrictEqual([
          [id("b"), 1],
          [id("c"), 1],
          [id("a"), 7],
        ]);
      });

      it("answers full once the user has max rooms, and member for a room it has", async () => {
        expect(await u.join(id("ann"), id("a"), 0, 2)).toBe("joined");
        expect(await u.join(id("ann"), id("b"), 0, 2)).toBe("joined");
        expect(await u.join(id("ann"), id("c"), 0, 2)).toBe("full");
        expect(await u.join(id("ann"), id("a"), 0, 2)).toBe("member");
        expect(await u.join(id("ann"), id("c"), 0, 3)).toBe("joined");
        await u.part(id("ann"), id("a"));
        await u.part(id("ann"), id("b"));
        expect(await u.join(id("ann"), id("d"), 0, 2)).toBe("joined");
        expect((await u.load(id("ann")))?.rooms.map((r) => r.room)).toStrictEqual([id("c"), id("d")]);
      });

      it("parts: true for a member, false otherwise", async () => {
        await u.join(id("ann"), id("a"), 0);
        expect(await u.part(id("ann"), id("a"))).toBe(true);
        expect(await u.part(id("ann"), id("a"))).toBe(false);
        expect(await u.part(id("nobody"), id("a"))).toBe(false);
        expect((await u.load(id("ann")))?.rooms).toStrictEqual([]);
      });

      it("moves a marker forward only, answers the stored one, and undefined for a non-member", async () => {
        await u.join(id("ann"), id("a"), 5);
        await u.join(id("ann"), id("b"), 5);
        expect(await u.read(id("ann"), id("a"), 9)).toBe(9);
        expect(await u.read(id("ann"), id("a"), 6)).toBe(9);
        expect(await u.read(id("ann"), id("c"), 6)).toBeUndefined();
        expect(await u.read(id("nobody"), id("a"), 6)).toBeUndefined();
        expect((await u.load(id("ann")))?.rooms).toStrictEqual([
          { room: id("a"), readSeq: 9 },
          { room: id("b"), readSeq: 5 },
        ]);
      });
    });

    describe("direct rooms", () => {
      it("gives a pair one room, in either order, named the first time only", async () => {
        let named = 0;
        const name = () => `~${id("dm")}${++named}`;
        const room = await u.directRoom(id("ann"), id("bob"), name);
        expect(await u.directRoom(id("bob"), id("ann"), name)).toBe(room);
        expect(await u.directRoom(id("ann"), id("bob"), name)).toBe(room);
        expect(named).toBe(1);
        const other = await u.directRoom(id("ann"), id("cy"), name);
        expect(other).not.toBe(room);
        expect(sorted(await u.directPair(room))).toStrictEqual([id("ann"), id("bob")]);
        expect(sorted(await u.directPair(other))).toStrictEqual([id("ann"), id("cy")]);
        expect(await u.directPair(`~${id("none")}`)).toBeUndefined();
      });
    });

    describe("counts", () => {
      const posts = (from: number, to: number, author: (seq: number) => string | null, mentions?: string[]) =>
        Array.from({ length: to - from + 1 }, (_, i): ContractPost => {
          const seq = from + i;
          return mentions ? { seq, userId: author(seq), mentionIds: mentions } : { seq, userId: author(seq) };
        });

      it("counts the posts of others after the marker up to upTo, and those of them that mention the user", async () => {
        const room = id("r");
        // 1-12: ann writes every third; bob the others, v1 posts (no user) at 5 and 10; bob names ann at 4, 8, 11.
        const author = (seq: number) => (seq % 3 === 0 ? id("ann") : seq % 5 === 0 ? null : id("bob"));
        await h.post(
          room,
          posts(1, 12, author).map((p) =>
            [4, 8, 11].includes(p.seq) ? { ...p, mentionIds: [id("ann")] } : p,
          ),
        );
        const ask = (readSeq: number, upTo: number) => u.counts(id("ann"), [{ room, readSeq, upTo }]);
        // After 2 up to 12: 3, 6, 9, 12 are ann's; 4, 5, 7, 8, 10, 11 others'.
        expect(await ask(2, 12)).toStrictEqual([{ unread: 6, mentions: 3 }]);
        // upTo bounds both: 11 and 12 are beyond it.
        expect(await ask(2, 10)).toStrictEqual([{ unread: 5, mentions: 2 }]);
        expect(await ask(4, 8)).toStrictEqual([{ unread: 3, mentions: 1 }]);
        expect(await ask(0, 0)).toStrictEqual([{ unread: 0, mentions: 0 }]);
        // For bob: ann's four and the two v1 posts; nothing mentions him.
        expect(await u.counts(id("bob"), [{ room, readSeq: 0, upTo: 12 }])).toStrictEqual([
          { unread: 6, mentions: 0 },
        ]);
      });

      it("stops each count at the cap", async () => {
        const room = id("r");
        await h.post(
          room,
          posts(1, 10, () => id("bob"), [id("ann")]),
        );
        const q = [{ room, readSeq: 0, upTo: 10 }];
        expect(await u.counts(id("ann"), q, 4)).toStrictEqual([{ unread: 4, mentions: 4 }]);
        expect(await u.counts(id("ann"), q, 10)).toStrictEqual([{ unread: 10, mentions: 10 }]);
        expect(await u.counts(id("ann"), q, 11)).toStrictEqual([{ unread: 10, mentions: 10 }]);
      });

      it("answers each query of its own room, in order; nothing for a room without posts or no queries", async () => {
        await h.post(
          id("a"),
          posts(1, 4, () => id("bob"), [id("ann")]),
        );
        await h.post(
          id("b"),
          posts(1, 6, () => id("bob"), [id("cy")]),
        );
        const counts = await u.counts(id("ann"), [
          { room: id("b"), readSeq: 1, upTo: 6 },
          { room: id("empty"), readSeq: 0, upTo: 9 },
          { room: id("a"), readSeq: 1, upTo: 4 },
          { room: id("a"), readSeq: 4, upTo: 4 },
        ]);
        expect(counts).toStrictEqual([
          { unread: 5, mentions: 0 },
          { unread: 0, mentions: 0 },
          { unread: 3, mentions: 3 },
          { unread: 0, mentions: 0 },
        ]);
        expect(await u.counts(id("ann"), [])).toStrictEqual([]);
      });
    });

    describe("bans", () => {
      // Times from the clock: a store may let a ban expire by itself (a TTL) once it ends.
      const HOUR = 3_600_000;

      it("holds a user out of one room until it ends (in force before `until`, not at it)", async () => {
        const now = Date.now();
        const ban: Ban = {
          userId: id("ann"),
          nickKey: id("ann"),
          until: now + HOUR,
          reason: "spam",
          by: "Mod",
        };
        await u.ban(id("r"), ban);
        expect(await u.banned(id("r"), { userId: id("ann") }, now)).toStrictEqual(ban);
        expect(await u.banned(id("r"), { userId: id("ann") }, now + HOUR - 1)).toStrictEqual(ban);
        expect(await u.banned(id("r"), { userId: id("ann") }, now + HOUR)).toBeUndefined();
        expect(await u.banned(id("other"), { userId: id("ann") }, now)).toBeUndefined();
        expect(await u.banned(id("r"), { userId: id("bob"), nickKey: id("bob") }, now)).toBeUndefined();
      });

      it("answers no ban that has ended, and a ban for ever at any time", async () => {
        const now = Date.now();
        await u.ban(id("r"), { userId: id("ann"), nickKey: id("ann"), until: now - 1000, by: "Mod" });
        expect(await u.banned(id("r"), { userId: id("ann"), nickKey: id("ann") }, now)).toBeUndefined();
        const forever: Ban = { userId: id("bob"), nickKey: id("bob"), until: null, by: "Mod" };
        await u.ban(id("r"), forever);
        expect(await u.banned(id("r"), { userId: id("bob") }, now)).toStrictEqual(forever);
        expect(await u.banned(id("r"), { userId: id("bob") }, now + 100 * 365 * 24 * HOUR)).toStrictEqual(
          forever,
        );
      });

      it("holds a user's nick out too: a v1 connection (or anyone) by that nick key", async () => {
        const now = Date.now();
        const ban: Ban = { userId: id("ann"), nickKey: id("annie"), until: null, by: "Mod" };
        await u.ban(id("r"), ban);
        expect(await u.banned(id("r"), { nickKey: id("annie") }, now)).toStrictEqual(ban);
        expect(await u.banned(id("r"), { userId: id("other"), nickKey: id("annie") }, now)).toStrictEqual(
          ban,
        );
        // The user under another nick is still banned; another nick of no banned user is not.
        expect(await u.banned(id("r"), { userId: id("ann"), nickKey: id("new") }, now)).toStrictEqual(ban);
        expect(await u.banned(id("r"), { nickKey: id("new") }, now)).toBeUndefined();
      });

      it("answers, of several bans in force on the user and its nick, the one that ends last", async () => {
        const now = Date.now();
        const user: Ban = { userId: id("ann"), nickKey: id("ann"), until: now + HOUR, by: "Mod" };
        const longer: Ban = { nickKey: id("ann"), until: now + 2 * HOUR, by: "Mod" };
        await u.ban(id("r"), user);
        await u.ban(id("r"), longer);
        const who = { userId: id("ann"), nickKey: id("ann") };
        expect(await u.banned(id("r"), who, now)).toStrictEqual(longer);
        const forever: Ban = { userId: id("ann"), nickKey: id("ann"), until: null, by: "Mod" };
        await u.ban(id("r"), forever);
        expect(await u.banned(id("r"), who, now)).toStrictEqual(forever);
        await u.unban(id("r"), id("ann"));
        expect(await u.banned(id("r"), who, now)).toStrictEqual(longer);
        expect(await u.banned(id("r"), who, now + 2 * HOUR)).toBeUndefined();
      });

      it("bans a v1 nick (no user), lifted by v1:NICKKEY", async () => {
        const now = Date.now();
        const ban: Ban = { nickKey: id("eve"), until: now + HOUR, reason: "flood", by: "admin" };
        await u.ban(id("r"), ban);
        expect(await u.banned(id("r"), { nickKey: id("eve") }, now)).toStrictEqual(ban);
        expect(await u.banned(id("r"), { userId: id("u-eve"), nickKey: id("eve") }, now)).toStrictEqual(ban);
        expect(await u.banned(id("r"), { userId: id("eve") }, now)).toBeUndefined();
        expect(await u.unban(id("r"), id("eve"))).toBe(false);
        expect(await u.unban(id("r"), `v1:${id("eve")}`)).toBe(true);
        expect(await u.banned(id("r"), { nickKey: id("eve") }, now)).toBeUndefined();
      });

      it("lifts one of a room's bans and leaves the others in force", async () => {
        const now = Date.now();
        const kept: Ban = { userId: id("kim"), nickKey: id("kim"), until: null, by: "A" };
        await u.ban(id("two"), { userId: id("lee"), nickKey: id("lee"), until: null, by: "A" });
        await u.ban(id("two"), kept);
        expect(await u.unban(id("two"), id("lee"))).toBe(true);
        expect(await u.banned(id("two"), { userId: id("lee"), nickKey: id("lee") }, now)).toBeUndefined();
        expect(await u.banned(id("two"), { nickKey: id("kim") }, now)).toStrictEqual(kept);
        expect(await u.unban(id("two"), id("kim"))).toBe(true);
        expect(await u.banned(id("two"), { userId: id("kim"), nickKey: id("kim") }, now)).toBeUndefined();
        await u.ban(id("two"), kept);
        expect(await u.banned(id("two"), { userId: id("kim") }, now)).toStrictEqual(kept);
      });

      it("replaces a ban of the same user, and lifts it: true once, false after and for no ban", async () => {
        const now = Date.now();
        await u.ban(id("r"), {
          userId: id("ann"),
          nickKey: id("ann"),
          until: null,
          reason: "first",
          by: "A",
        });
        const second: Ban = { userId: id("ann"), nickKey: id("ann"), until: now + HOUR, by: "B" };
        await u.ban(id("r"), second);
        expect(await u.banned(id("r"), { userId: id("ann") }, now)).toStrictEqual(second);
        expect(await u.banned(id("r"), { userId: id("ann") }, now + HOUR)).toBeUndefined();
        await u.ban(id("q"), { userId: id("ann"), nickKey: id("ann"), until: null, by: "A" });
        expect(await u.unban(id("r"), id("ann"))).toBe(true);
        expect(await u.unban(id("r"), id("ann"))).toBe(false);
        expect(await u.unban(id("r"), id("nobody"))).toBe(false);
        expect(await u.banned(id("r"), { userId: id("ann"), nickKey: id("ann") }, now)).toBeUndefined();
        // Only that room's.
        expect((await u.banned(id("q"), { userId: id("ann") }, now))?.by).toBe("A");
      });
    });

    describe("a restart", () => {
      it.skipIf(!restarts)(
        "keeps users, their rooms in order with markers and peers, revocations, direct rooms, bans and the key",
        async () => {
          const key = await u.identityKey();
          await u.create(id("ann"), "Ann");
          await u.create(id("bob"), "Bob");
          await u.create(id("cy"), "Cy");
          await u.rename(id("bob"), "Robert");
          await u.join(id("ann"), id("z"), 4);
          await u.join(id("ann"), id("a"), 0);
          await u.join(id("ann"), id("~d"), 1, 100, id("bob"));
          await u.read(id("ann"), id("a"), 8);
          await u.revoke(id("cy"));
          const dm = await u.directRoom(id("ann"), id("bob"), () => id("~d"));
          const ban: Ban = { userId: id("bob"), nickKey: id("robert"), until: null, reason: "r", by: "Mod" };
          await u.ban(id("a"), ban);
          await restart();
          expect(await u.identityKey()).toBe(key);
          expect(await u.load(id("ann"))).toStrictEqual({
            userId: id("ann"),
            nick: "Ann",
            rooms: [
              { room: id("z"), readSeq: 4 },
              { room: id("a"), readSeq: 8 },
              { room: id("~d"), readSeq: 1, peer: id("bob") },
            ],
          });
          expect((await u.load(id("bob")))?.nick).toBe("Robert");
          expect(await u.load(id("cy"))).toBeUndefined();
          expect(await u.directRoom(id("bob"), id("ann"), () => "never")).toBe(dm);
          expect(sorted(await u.directPair(dm))).toStrictEqual([id("ann"), id("bob")]);
          expect(await u.banned(id("a"), { nickKey: id("robert") }, Date.now())).toStrictEqual(ban);
        },
      );
    });
  });
}
