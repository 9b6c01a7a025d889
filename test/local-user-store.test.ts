/** The local stores' v2 data: the UserStore contract on memory and SQLite, v2 posts, counts, migration. */
import { Database } from "bun:sqlite";
import { afterAll, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Post } from "../server/chat/engine";
import type { Counts } from "../server/chat/users";
import { MemoryStore } from "../server/engines/local/memory-store";
import { BANNED_SQL } from "../server/engines/local/sqlite-bans";
import { nodeSqlite } from "../server/engines/local/sqlite-node";
import { SqliteStore } from "../server/engines/local/sqlite-store";
import { MENTIONED_SQL, UNREAD_SQL } from "../server/engines/local/sqlite-users";
import type { ChatStore, StoredMessage } from "../server/engines/local/store";
import {
  type ContractPost,
  call,
  type UserStoreHarness,
  userStoreContract,
} from "./support/user-store-contract";

const dir = mkdtempSync(join(tmpdir(), "local-user-store-"));
let files = 0;
const tempPath = () => join(dir, `users-${++files}.db`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T0 = Date.UTC(2024, 0, 1);

function msg(room: string, seq: number, fields: Partial<StoredMessage> = {}): StoredMessage {
  return {
    room,
    seq,
    nick: `n${seq}`,
    text: `t${seq}`,
    sentAt: T0 + seq,
    session: "s",
    clientId: null,
    ...fields,
  };
}

const stored = (room: string, p: ContractPost) =>
  msg(room, p.seq, p.mentionIds ? { userId: p.userId, mentionIds: p.mentionIds } : { userId: p.userId });

function harness(store: ChatStore, reopen?: () => ChatStore): UserStoreHarness {
  const h: UserStoreHarness = {
    store: store.users,
    close: async () => store.close(),
    post: async (room, posts) =>
      store.commit(
        posts.map((p) => stored(room, p)),
        [],
      ),
  };
  if (reopen) {
    h.restart = async () => {
      store.close();
      return harness(reopen(), reopen);
    };
  }
  return h;
}

/** A SqliteStore that shows its database to the test. */
class OpenSqlite extends SqliteStore {
  all(sql: string, ...args: Array<string | number>): unknown[] {
    return this.db.query(sql).all(...args);
  }
}

userStoreContract("MemoryStore", async () => harness(new MemoryStore()), false);
userStoreContract("SqliteStore in memory", async () => harness(new SqliteStore(":memory:")), false);
userStoreContract("SqliteStore on a file", async () => {
  const path = tempPath();
  return harness(new SqliteStore(path), () => new SqliteStore(path));
});
userStoreContract("SqliteStore on node:sqlite", async () => {
  const path = tempPath();
  const open = () => new SqliteStore(path, Date.now(), "normal", nodeSqlite);
  return harness(open(), open);
});

const counts = (store: ChatStore, userId: string, room: string, readSeq: number, upTo: number, cap = 1000) =>
  call<Counts[]>((d) => store.users.counts(userId, [{ room, readSeq, upTo }], cap, d)).then((c) => c[0]);

for (const [name, open] of [
  ["MemoryStore", () => new MemoryStore()],
  ["SqliteStore", () => new SqliteStore(tempPath())],
] as Array<[string, () => ChatStore]>) {
  describe(`${name}: v2 posts`, () => {
    it("pages a v2 post with its fields, and a v1 post with exactly v1's keys", () => {
      const store = open();
      const v2 = { userId: "u1", kind: "action", replyTo: 1, mentions: ["Bob"], mentionIds: ["u2"] } as const;
      store.commit(
        [
          msg("r", 1),
          msg("r", 2, { ...v2, mentions: [...v2.mentions], mentionIds: [...v2.mentionIds] }),
          msg("r", 3, { userId: "u1", kind: null, replyTo: null, mentions: [], mentionIds: [] }),
        ],
        [],
      );
      const sentAt = (seq: number) => new Date(T0 + seq).toISOString();
      const expected: Post[] = [
        { type: "chat", room: "r", seq: 1, nick: "n1", text: "t1", sentAt: sentAt(1) },
        {
          type: "chat",
          room: "r",
          seq: 2,
          nick: "n2",
          text: "t2",
          sentAt: sentAt(2),
          userId: "u1",
          kind: "action",
          replyTo: 1,
          mentions: ["Bob"],
        },
        { type: "chat", room: "r", seq: 3, nick: "n3", text: "t3", sentAt: sentAt(3), userId: "u1" },
      ];
      for (const page of [store.after("r", 0, 10), store.before("r", 10, 10)]) {
        expect(page.messages).toStrictEqual(expected);
        expect(page.messages.map((m) => JSON.stringify(m))).toStrictEqual(
          expected.map((m) => JSON.stringify(m)),
        );
      }
      store.close();
    });

    it("counts exactly up to the cap (999, 1000, 1001 posts by others), leaving out the user's own", async () => {
      const store = open();
      // Odd seqs: bob's, each naming ann; even seqs: ann's. 1001 of each.
      const posts = Array.from({ length: 2002 }, (_, i) =>
        (i + 1) % 2 === 1
          ? msg("r", i + 1, { userId: "bob", mentionIds: ["ann"] })
          : msg("r", i + 1, { userId: "ann" }),
      );
      store.commit(posts, []);
      expect(await counts(store, "ann", "r", 0, 1997)).toStrictEqual({ unread: 999, mentions: 999 });
      expect(await counts(store, "ann", "r", 0, 1999)).toStrictEqual({ unread: 1000, mentions: 1000 });
      expect(await counts(store, "ann", "r", 0, 2001)).toStrictEqual({ unread: 1000, mentions: 1000 });
      expect(await counts(store, "ann", "r", 0, 2002, 1002)).toStrictEqual({ unread: 1001, mentions: 1001 });
      // upTo matters even far below the cap: 1001 posts wait beyond it.
      expect(await counts(store, "ann", "r", 0, 3)).toStrictEqual({ unread: 2, mentions: 2 });
      // Bob: ann's 1001 posts, capped; none names him.
      expect(await counts(store, "bob", "r", 1, 2002)).toStrictEqual({ unread: 1000, mentions: 0 });
      store.close();
    });

    it("takes no mention of the author by itself, and counts a name given twice once", async () => {
      const store = open();
      store.commit([msg("r", 1, { userId: "ann", mentionIds: ["ann", "bob", "bob"] })], []);
      expect(await counts(store, "ann", "r", 0, 1)).toStrictEqual({ unread: 0, mentions: 0 });
      expect(await counts(store, "bob", "r", 0, 1)).toStrictEqual({ unread: 1, mentions: 1 });
      store.close();
    });

    it("prunes the mentions of pruned posts with them, whole or a step at a time", async () => {
      const store = open();
      for (const room of ["a", "b"]) {
        store.commit(
          Array.from({ length: 10 }, (_, i) => msg(room, i + 1, { userId: "bob", mentionIds: ["ann"] })),
          [],
        );
      }
      expect(store.prune(3, 0)).toBe(14);
      for (const room of ["a", "b"]) {
        expect(await counts(store, "ann", room, 0, 10)).toStrictEqual({ unread: 3, mentions: 3 });
      }
      store.commit([msg("a", 11, { userId: "bob", mentionIds: ["ann"] })], []);
      while (!store.pruneStep(2, 0, 1).done) {}
      expect(await counts(store, "ann", "a", 0, 11)).toStrictEqual({ unread: 2, mentions: 2 });
      expect(await counts(store, "ann", "b", 0, 11)).toStrictEqual({ unread: 2, mentions: 2 });
      store.close();
    });
  });
}

describe("SqliteStore: v2 data on disk", () => {
  it("keeps v2 posts, users and counts through a close and a reopen", async () => {
    const path = tempPath();
    const first = new SqliteStore(path);
    first.commit(
      [msg("r", 1, { userId: "bob", kind: "action", replyTo: 0, mentions: ["Ann"], mentionIds: ["ann"] })],
      [],
    );
    await call((d) => first.users.create("ann", "Ann", d));
    await call((d) => first.users.join("ann", { room: "r", readSeq: 0 }, 100, d));
    const page = first.after("r", 0, 10);
    first.close();
    const again = new SqliteStore(path);
    expect(again.after("r", 0, 10)).toStrictEqual(page);
    expect(page.messages[0]?.replyTo).toBe(0);
    expect(await call((d) => again.users.load("ann", d))).toStrictEqual({
      userId: "ann",
      nick: "Ann",
      rooms: [{ room: "r", readSeq: 0 }],
    });
    expect(await counts(again, "ann", "r", 0, 1)).toStrictEqual({ unread: 1, mentions: 1 });
    again.close();
  });

  it("has every answered change on disk when the process is killed (kill -9) right after", async () => {
    const path = tempPath();
    const module = JSON.stringify(join(import.meta.dir, "../server/engines/local/sqlite-store"));
    const child = Bun.spawnSync([
      process.execPath,
      "-e",
      `const { SqliteStore } = require(${module});
       const u = new SqliteStore(${JSON.stringify(path)}).users;
       const ok = (err) => { if (err) throw err; };
       u.identityKey((err, key) => { ok(err); console.log(key); });
       u.create("ann", "Ann", ok);
       u.join("ann", { room: "a", readSeq: 1 }, 100, ok);
       u.join("ann", { room: "b", readSeq: 2 }, 100, ok);
       u.read("ann", "a", 7, ok);
       u.part("ann", "b", ok);
       u.rename("ann", "Annie", ok);
       u.directRoom("ann", "bob", () => "~ab", ok);
       u.create("cy", "Cy", ok);
       u.revoke("cy", ok);
       u.ban("a", { userId: "bob", nickKey: "bob", until: null, reason: "spam", by: "Ann" }, ok);
       process.kill(process.pid, "SIGKILL");`,
    ]);
    expect(child.signalCode).toBe("SIGKILL");
    const key = child.stdout.toString().trim();
    const store = new SqliteStore(path);
    const users = store.users;
    expect(await call<string>((d) => users.identityKey(d))).toBe(key);
    expect(await call((d) => users.load("ann", d))).toStrictEqual({
      userId: "ann",
      nick: "Annie",
      rooms: [{ room: "a", readSeq: 7 }],
    });
    expect(await call((d) => users.load("cy", d))).toBeUndefined();
    expect(await call((d) => users.directPair("~ab", d))).toStrictEqual(["ann", "bob"]);
    expect(await call((d) => users.banned("a", { nickKey: "bob" }, Date.now(), d))).toStrictEqual({
      userId: "bob",
      nickKey: "bob",
      until: null,
      reason: "spam",
      by: "Ann",
    });
    store.close();
  });

  it("opens a database from before v2: adds the columns and still serves its messages", async () => {
    const path = tempPath();
    const old = new Database(path, { create: true, strict: true });
    old.run(`CREATE TABLE messages (
      room TEXT NOT NULL, seq INTEGER NOT NULL, nick TEXT NOT NULL, text TEXT NOT NULL,
      sent_at INTEGER NOT NULL, session TEXT NOT NULL, client_id TEXT, UNIQUE (room, seq));
      CREATE TABLE sessions (id TEXT PRIMARY KEY, room TEXT NOT NULL, nick TEXT NOT NULL, ended_at INTEGER) WITHOUT ROWID;
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;`);
    old.run("INSERT INTO messages VALUES ('lobby', 1, 'ann', 'hello', ?, 's', 'c1')", [T0]);
    old.run("INSERT INTO meta VALUES ('epoch', 'old-epoch')");
    old.close();

    for (let open = 0; open < 2; open++) {
      const store = new OpenSqlite(path);
      expect(store.epoch()).toBe("old-epoch");
      const columns = (store.all("PRAGMA table_info(messages)") as Array<{ name: string }>).map(
        (c) => c.name,
      );
      expect(columns).toEqual(expect.arrayContaining(["user_id", "kind", "reply_to", "mentions"]));
      const first = store.after("lobby", 0, 10).messages[0];
      expect(JSON.stringify(first)).toBe(
        JSON.stringify({
          type: "chat",
          room: "lobby",
          seq: 1,
          nick: "ann",
          text: "hello",
          sentAt: new Date(T0).toISOString(),
        }),
      );
      if (open === 0) store.commit([msg("lobby", 2, { userId: "bob", mentionIds: ["ann"] })], []);
      expect(store.recentClientIds("s", "lobby", 5)).toStrictEqual([["c1", 1]]);
      // The old v1 row counts as someone else's post.
      expect(await counts(store, "ann", "lobby", 0, 2)).toStrictEqual({ unread: 2, mentions: 1 });
      store.close();
    }
  });

  it("deletes the mention rows of pruned posts from the table", () => {
    const store = new OpenSqlite(tempPath());
    store.commit(
      Array.from({ length: 10 }, (_, i) => msg("r", i + 1, { userId: "bob", mentionIds: ["ann", "cy"] })),
      [],
    );
    store.prune(3, 0);
    const rows = store.all("SELECT user_id, seq FROM mentions WHERE room = 'r' ORDER BY user_id, seq");
    expect(rows).toStrictEqual(
      ["ann", "cy"].flatMap((user_id) => [8, 9, 10].map((seq) => ({ user_id, seq }))),
    );
    store.close();
  });

  it("counts by index ranges ((room, seq) of messages, the key of mentions), never a scan; bans by index", () => {
    const store = new OpenSqlite(tempPath());
    const plan = (sql: string, params: number) =>
      (store.all(`EXPLAIN QUERY PLAN ${sql}`, ...Array(params).fill(1)) as Array<{ detail: string }>).map(
        (r) => r.detail,
      );
    const unread = plan(UNREAD_SQL, 5);
    const mentioned = plan(MENTIONED_SQL, 5);
    expect(unread).toContain(
      "SEARCH messages USING INDEX sqlite_autoindex_messages_1 (room=? AND seq>? AND seq<?)",
    );
    expect(mentioned).toContain(
      "SEARCH mentions USING PRIMARY KEY (user_id=? AND room=? AND seq>? AND seq<?)",
    );
    // (The only SCAN is the count's over its subquery's rows.)
    for (const detail of [...unread, ...mentioned]) expect(detail).not.toMatch(/SCAN (messages|mentions)/);
    expect(plan("DELETE FROM mentions WHERE room = ? AND seq <= ?", 2).join()).toContain("mentions_by_room");
    expect(plan("DELETE FROM mentions WHERE room = ? AND seq = ?", 2).join()).toContain("mentions_by_room");
    // A ban is looked up by its key and by its nick, each an index lookup.
    const banned = plan(BANNED_SQL, 4);
    expect(banned).toContain("SEARCH bans USING PRIMARY KEY (room=? AND key=?)");
    expect(banned).toContain("SEARCH bans USING INDEX bans_by_nick (room=? AND nick_key=?)");
    store.close();
  });

  it("answers a storage failure through done, not by throwing", async () => {
    const store = new SqliteStore(":memory:");
    store.close();
    let error: unknown;
    store.users.load("ann", (err) => {
      error = err;
    });
    expect(error).toBeInstanceOf(Error);
  });
});

describe.if(Boolean(process.env.MEASURE_COUNTS))("SqliteStore: the cost of counts (MEASURE_COUNTS=1)", () => {
  it("one counts() over 100 rooms, each with 5,000 unread posts and 100 mentions", async () => {
    const path = tempPath();
    let store = new SqliteStore(path);
    const rooms = Array.from({ length: 100 }, (_, i) => `room-${i}`);
    // Rooms written in turns, as live traffic interleaves them on disk.
    for (let seq = 1; seq <= 5000; seq += 10) {
      const batch: StoredMessage[] = [];
      for (const room of rooms) {
        for (let s = seq; s < seq + 10; s++) {
          batch.push(msg(room, s, { userId: `u${s % 7}`, ...(s % 50 === 0 ? { mentionIds: ["me"] } : {}) }));
        }
      }
      store.commit(batch, []);
    }
    store.close();
    store = new SqliteStore(path);
    const queries = rooms.map((room) => ({ room, readSeq: 0, upTo: 5000 }));
    const times: number[] = [];
    for (let run = 0; run < 21; run++) {
      const t0 = performance.now();
      const result = await call<Counts[]>((d) => store.users.counts("me", queries, 1000, d));
      times.push(performance.now() - t0);
      expect(result[0]).toStrictEqual({ unread: 1000, mentions: 100 });
    }
    const first = times[0] as number;
    const rest = times.slice(1).sort((a, b) => a - b);
    console.log(
      `counts(): 100 rooms x 5,000 unread + 100 mentions: first ${first.toFixed(1)} ms, ` +
        `median ${rest[10]?.toFixed(1)} ms, max ${rest.at(-1)?.toFixed(1)} ms`,
    );
    store.close();
  });
});
