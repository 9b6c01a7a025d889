/**
 * The local stores' v2 changes: a change's row, the room's rev and topic, and its post's folded
 * state, written in the transaction of the messages (all or nothing); post(), pages, changes(),
 * roomMeta(), counts without deleted posts, a deleted post's text gone from the file, migration.
 */
import { Database } from "bun:sqlite";
import { afterAll, describe, expect, it } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { v2 } from "../protocol";
import type { ChangeRequest, Post } from "../server/chat/engine";
import { applyChange, changeMessage } from "../server/chat/posts";
import type { Counts } from "../server/chat/users";
import { MemoryStore } from "../server/engines/local/memory-store";
import { nodeSqlite } from "../server/engines/local/sqlite-node";
import { SqliteStore } from "../server/engines/local/sqlite-store";
import type { ChatStore, StoredChange, StoredMessage } from "../server/engines/local/store";
import { call } from "./support/user-store-contract";

const dir = mkdtempSync(join(tmpdir(), "local-changes-store-"));
let files = 0;
const tempPath = () => join(dir, `changes-${++files}.db`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T0 = Date.UTC(2024, 0, 1);
const iso = (ms: number) => new Date(ms).toISOString();

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

/**
 * A change as the local engine makes it: folded (core's applyChange) into the post as the store
 * has it now, or as `base` (a post of the same, not yet stored, batch). Throws when it does nothing.
 */
function change(store: ChatStore, room: string, rev: number, req: ChangeRequest, base?: Post): StoredChange {
  const at = iso(T0 + 60_000 + rev);
  const wire = changeMessage(room, rev, req, at);
  if (req.type === "topic") return { room, change: wire };
  const applied = applyChange(base ?? store.post(room, req.seq), req, at);
  if (!applied.ok) throw new Error(`${req.type} of ${req.seq}: ${applied.why}`);
  return { room, change: wire, post: applied.post };
}

const react = (seq: number, emoji: string, userId: string, nick: string, on = true): ChangeRequest => ({
  type: "react",
  seq,
  emoji,
  on,
  userId,
  nick,
  maxEmoji: 20,
});

/** Stores each change alone (its own commit), with the room's next revs from `first`. */
function apply(store: ChatStore, room: string, first: number, reqs: ChangeRequest[]): void {
  reqs.forEach((req, i) => {
    store.commit([], [], [change(store, room, first + i, req)]);
  });
}

const counts = (store: ChatStore, userId: string, room: string, readSeq: number, upTo: number, cap = 1000) =>
  call<Counts[]>((d) => store.users.counts(userId, [{ room, readSeq, upTo }], cap, d)).then((c) => c[0]);

const revs = (page: { changes: v2.Change[] }) => page.changes.map((c) => c.rev);

/** A SqliteStore that shows its database to the test. */
class OpenSqlite extends SqliteStore {
  all(sql: string, ...args: Array<string | number>): unknown[] {
    return this.db.query(sql).all(...args);
  }
}

for (const [name, open] of [
  ["MemoryStore", () => new MemoryStore()],
  ["SqliteStore in memory", () => new SqliteStore(":memory:")],
  ["SqliteStore on a file", () => new SqliteStore(tempPath())],
  ["SqliteStore on node:sqlite", () => new SqliteStore(tempPath(), Date.now(), "normal", nodeSqlite)],
] as Array<[string, () => ChatStore]>) {
  describe(`${name}: changes`, () => {
    const posts = () => [
      msg("r", 1, { userId: "ann", mentions: ["Bob"], mentionIds: ["bob"], replyTo: null }),
      msg("r", 2),
      msg("r", 3, { userId: "ann", kind: "action" }),
      msg("r", 4),
    ];

    it("folds edits, reactions and deletes into post(), before() and after(); untouched posts keep their JSON", () => {
      const store = open();
      store.commit(posts(), []);
      const untouched = JSON.stringify(store.post("r", 3));
      apply(store, "r", 1, [
        { type: "edit", seq: 1, text: "edited" },
        react(1, "👍", "bob", "Bob"),
        react(1, "👍", "cy", "Cy"),
        react(1, ":tada:", "bob", "Bob"),
        react(1, "👍", "bob", "Bob", false),
        react(2, "👍", "ann", "Ann"),
        react(2, "👍", "ann", "Ann", false),
        { type: "edit", seq: 2, text: "v1 edited" },
        react(4, "❤️", "ann", "Ann"),
        { type: "delete", seq: 4, by: "mod" },
      ]);
      const one: Post = {
        type: "chat",
        room: "r",
        seq: 1,
        nick: "n1",
        text: "edited",
        sentAt: iso(T0 + 1),
        userId: "ann",
        mentions: ["Bob"],
        editedAt: iso(T0 + 60_001),
        reactions: [
          { emoji: "👍", nicks: ["Cy"], ids: ["cy"] },
          { emoji: ":tada:", nicks: ["Bob"], ids: ["bob"] },
        ],
      };
      // A v1 post edited, its only reaction gone again: no reactions key at all.
      const two: Post = {
        type: "chat",
        room: "r",
        seq: 2,
        nick: "n2",
        text: "v1 edited",
        sentAt: iso(T0 + 2),
        editedAt: iso(T0 + 60_008),
      };
      const four: Post = {
        type: "chat",
        room: "r",
        seq: 4,
        nick: "n4",
        text: "",
        sentAt: iso(T0 + 4),
        deleted: true,
      };
      expect(store.post("r", 1)).toStrictEqual(one);
      expect(store.post("r", 2)).toStrictEqual(two);
      expect(store.post("r", 4)).toStrictEqual(four);
      expect(JSON.stringify(store.post("r", 3))).toBe(untouched);
      for (const page of [store.before("r", 10, 10), store.after("r", 0, 10)]) {
        expect(page.messages).toStrictEqual([one, two, store.post("r", 3) as Post, four]);
        expect(JSON.stringify(page.messages[2])).toBe(untouched);
      }
      expect(store.post("r", 5)).toBeUndefined();
      expect(store.post("other", 1)).toBeUndefined();
      store.close();
    });

    it("stores a change to a post of the same batch, after the post", () => {
      const store = open();
      store.commit([msg("r", 1)], []);
      const edit = change(store, "r", 1, { type: "edit", seq: 2, text: "at once" }, msgPost(2));
      store.commit([msg("r", 2)], [], [edit]);
      expect(store.post("r", 2)?.text).toBe("at once");
      expect(store.roomMeta("r")).toStrictEqual({ lastRev: 1, topic: "" });
      store.close();
    });

    it("gives copies: changing what it answered changes nothing stored", () => {
      const store = open();
      store.commit(posts(), []);
      apply(store, "r", 1, [react(1, "👍", "bob", "Bob")]);
      const post = store.post("r", 1) as Post;
      post.reactions?.[0]?.nicks.push("Eve");
      post.text = "changed";
      const page = store.changes("r", 0, 1, 10);
      (page.changes[0] as v2.ReactionMessage).emoji = "x";
      expect(store.post("r", 1)?.reactions).toStrictEqual([{ emoji: "👍", nicks: ["Bob"], ids: ["bob"] }]);
      expect(store.post("r", 1)?.text).toBe("t1");
      expect((store.changes("r", 0, 1, 10).changes[0] as v2.ReactionMessage).emoji).toBe("👍");
      store.close();
    });

    it("stores nothing of a batch that fails: messages, sessions, changes, folds, topic, mentions", async () => {
      const store = open();
      store.commit(posts(), []);
      apply(store, "r", 1, [{ type: "topic", topic: "old", nick: "Ann" }]);
      const before = store.after("r", 0, 10);
      const batch: StoredChange[] = [
        change(store, "r", 2, { type: "edit", seq: 1, text: "never" }),
        change(store, "r", 3, { type: "delete", seq: 1, by: "Ann" }),
        change(store, "r", 4, react(2, "👍", "bob", "Bob")),
        change(store, "r", 5, { type: "topic", topic: "never", nick: "Ann" }),
        change(store, "q", 1, { type: "topic", topic: "never", nick: "Ann" }),
        // Rev 1 of r is stored already: the batch fails here, after all the rest was written.
        change(store, "r", 1, { type: "topic", topic: "again", nick: "Ann" }),
      ];
      expect(() =>
        store.commit(
          [msg("r", 5, { userId: "ann", mentionIds: ["bob"] })],
          [{ id: "sess", room: "r", nick: "Ann", endedAt: null }],
          batch,
        ),
      ).toThrow();
      expect(store.lastSeq("r")).toBe(4);
      expect(store.after("r", 0, 10)).toStrictEqual(before);
      expect(store.loadSession("sess")).toBeUndefined();
      expect(store.roomMeta("r")).toStrictEqual({ lastRev: 1, topic: "old" });
      expect(store.roomMeta("q")).toStrictEqual({ lastRev: 0, topic: "" });
      expect(revs(store.changes("r", 0, 100, 100))).toStrictEqual([1]);
      expect(revs(store.changes("q", 0, 100, 100))).toStrictEqual([]);
      expect(await counts(store, "bob", "r", 0, 5)).toStrictEqual({ unread: 4, mentions: 1 });
      // The same changes (but the bad one) then go in.
      store.commit([msg("r", 5, { userId: "ann", mentionIds: ["bob"] })], [], batch.slice(0, 5));
      expect(store.post("r", 1)?.deleted).toBe(true);
      expect(store.roomMeta("r")).toStrictEqual({ lastRev: 5, topic: "never" });
      expect(store.roomMeta("q")).toStrictEqual({ lastRev: 1, topic: "never" });
      expect(store.loadSession("sess")).toBeUndefined();
      expect(await counts(store, "bob", "r", 0, 4)).toStrictEqual({ unread: 3, mentions: 0 });
      expect(await counts(store, "bob", "r", 0, 5)).toStrictEqual({ unread: 4, mentions: 1 });
      store.close();
    });

    it("keeps no text, mentions, reactions or edit time of a deleted post, whatever its fold still carries", async () => {
      const store = open();
      store.commit(posts(), []);
      const del = change(store, "r", 1, { type: "delete", seq: 1, by: "Ann" });
      const post = { ...(store.post("r", 1) as Post), editedAt: iso(T0), deleted: true as const };
      post.reactions = [{ emoji: "👍", nicks: ["Bob"], ids: ["bob"] }];
      store.commit([], [], [{ ...del, post }]);
      expect(store.post("r", 1)).toStrictEqual({
        type: "chat",
        room: "r",
        seq: 1,
        nick: "n1",
        text: "",
        sentAt: iso(T0 + 1),
        userId: "ann",
        deleted: true,
      });
      expect(await counts(store, "bob", "r", 0, 4)).toStrictEqual({ unread: 3, mentions: 0 });
      store.close();
    });

    it("keeps no edited text of a deleted post in its changes: each earlier edit becomes the delete at its rev", () => {
      const store = open();
      store.commit(posts(), []);
      apply(store, "r", 1, [
        { type: "edit", seq: 1, text: "secret one" },
        react(1, "👍", "bob", "Bob"),
        { type: "edit", seq: 2, text: "kept edit" },
        { type: "edit", seq: 1, text: "secret two" },
        { type: "delete", seq: 1, by: "Ann" },
      ]);
      const page = store.changes("r", 0, 10, 10);
      expect(JSON.stringify(page.changes)).not.toContain("secret");
      expect(page.changes.map((c) => [c.rev, c.type])).toEqual([
        [1, "delete"],
        [2, "reaction"],
        [3, "edit"],
        [4, "delete"],
        [5, "delete"],
      ]);
      expect(page.changes[0]).toStrictEqual({ type: "delete", room: "r", rev: 1, seq: 1, by: "Ann" });
      store.close();
    });

    it("refuses a rev stored already, or twice in a batch, storing nothing of that batch", () => {
      const store = open();
      store.commit(posts(), []);
      apply(store, "r", 1, [{ type: "topic", topic: "one", nick: "Ann" }]);
      const again = change(store, "r", 1, { type: "topic", topic: "again", nick: "Ann" });
      expect(() => store.commit([], [], [again])).toThrow();
      const two = change(store, "r", 2, { type: "edit", seq: 1, text: "two" });
      const twice = change(store, "r", 2, { type: "topic", topic: "twice", nick: "Ann" });
      expect(() => store.commit([], [], [two, twice])).toThrow();
      expect(store.roomMeta("r")).toStrictEqual({ lastRev: 1, topic: "one" });
      expect(store.post("r", 1)?.text).toBe("t1");
      expect(revs(store.changes("r", 0, 10, 10))).toStrictEqual([1]);
      store.close();
    });

    it("refuses a fold whose editedAt is no time, storing nothing of its batch", () => {
      const store = open();
      store.commit(posts(), []);
      const bad = change(store, "r", 1, { type: "edit", seq: 1, text: "x" });
      bad.post = { ...(bad.post as Post), editedAt: "yesterday" };
      expect(() => store.commit([msg("r", 5)], [], [bad])).toThrow();
      expect(store.lastSeq("r")).toBe(4);
      expect(store.roomMeta("r").lastRev).toBe(0);
      store.close();
    });

    it("pages changes by rev: ascending, at most limit, up to upTo, more when some were cut", () => {
      const store = open();
      store.commit(posts(), []);
      store.commit([msg("q", 1)], []);
      const edits = Array.from(
        { length: 7 },
        (_, i): ChangeRequest => ({ type: "edit", seq: 1, text: `e${i + 1}` }),
      );
      apply(store, "r", 1, edits);
      apply(store, "q", 1, [{ type: "topic", topic: "q's", nick: "Ann" }]);
      const cases: Array<[since: number, upTo: number, limit: number, revs: number[], more: boolean]> = [
        [0, 7, 3, [1, 2, 3], true],
        [3, 7, 3, [4, 5, 6], true],
        [6, 7, 3, [7], false],
        [4, 7, 3, [5, 6, 7], false],
        [0, 4, 10, [1, 2, 3, 4], false],
        [0, 4, 4, [1, 2, 3, 4], false],
        [0, 4, 3, [1, 2, 3], true],
        [0, 100, 100, [1, 2, 3, 4, 5, 6, 7], false],
        [0, 7, 0, [], true],
        [7, 7, 5, [], false],
        [7, 100, 5, [], false],
        [5, 3, 5, [], false],
      ];
      for (const [since, upTo, limit, want, more] of cases) {
        const page = store.changes("r", since, upTo, limit);
        expect({ since, upTo, limit, revs: revs(page), more: page.more }).toStrictEqual({
          since,
          upTo,
          limit,
          revs: want,
          more,
        });
      }
      const all = store.changes("r", 0, 7, 7).changes;
      expect(all[6]).toStrictEqual({
        type: "edit",
        room: "r",
        rev: 7,
        seq: 1,
        text: "e7",
        editedAt: iso(T0 + 60_007),
      });
      expect(store.changes("q", 0, 10, 10).changes).toStrictEqual([
        { type: "topic", room: "q", rev: 1, topic: "q's", nick: "Ann" },
      ]);
      expect(store.changes("none", 0, 10, 10)).toStrictEqual({ changes: [], more: false });
      store.close();
    });

    it("keeps each room's newest rev and topic: 0 and empty for a room with no change; a topic can be cleared", () => {
      const store = open();
      store.commit(posts(), []);
      expect(store.roomMeta("r")).toStrictEqual({ lastRev: 0, topic: "" });
      apply(store, "r", 1, [{ type: "topic", topic: "Hello", nick: "Ann" }, react(1, "👍", "bob", "Bob")]);
      expect(store.roomMeta("r")).toStrictEqual({ lastRev: 2, topic: "Hello" });
      apply(store, "r", 3, [{ type: "topic", topic: "", nick: "Ann" }]);
      expect(store.roomMeta("r")).toStrictEqual({ lastRev: 3, topic: "" });
      expect(store.roomMeta("R")).toStrictEqual({ lastRev: 0, topic: "" });
      store.close();
    });

    it("counts no deleted post as unread, nor its mentions, and still stops at the cap", async () => {
      const store = open();
      store.commit(
        Array.from({ length: 10 }, (_, i) => msg("r", i + 1, { userId: "bob", mentionIds: ["ann"] })),
        [],
      );
      apply(
        store,
        "r",
        1,
        [2, 4, 6, 8, 10].map((seq) => ({ type: "delete", seq, by: "Bob" })),
      );
      expect(await counts(store, "ann", "r", 0, 10)).toStrictEqual({ unread: 5, mentions: 5 });
      expect(await counts(store, "ann", "r", 0, 10, 3)).toStrictEqual({ unread: 3, mentions: 3 });
      expect(await counts(store, "ann", "r", 3, 6)).toStrictEqual({ unread: 1, mentions: 1 });
      expect(await counts(store, "ann", "r", 9, 10)).toStrictEqual({ unread: 0, mentions: 0 });
      // An edit or a reaction changes no count.
      apply(store, "r", 6, [{ type: "edit", seq: 1, text: "x" }, react(3, "👍", "ann", "Ann")]);
      expect(await counts(store, "ann", "r", 0, 10)).toStrictEqual({ unread: 5, mentions: 5 });
      store.close();
    });

    it("keeps the changes of pruned posts: changes() and roomMeta() answer as before", () => {
      const store = open();
      store.commit(posts(), []);
      apply(store, "r", 1, [
        { type: "edit", seq: 1, text: "e" },
        { type: "topic", topic: "T", nick: "Ann" },
        react(4, "👍", "bob", "Bob"),
      ]);
      expect(store.prune(1, 0)).toBe(3);
      expect(store.post("r", 1)).toBeUndefined();
      expect(store.post("r", 4)?.reactions).toStrictEqual([{ emoji: "👍", nicks: ["Bob"], ids: ["bob"] }]);
      expect(revs(store.changes("r", 0, 3, 10))).toStrictEqual([1, 2, 3]);
      expect(store.roomMeta("r")).toStrictEqual({ lastRev: 3, topic: "T" });
      // A change to a post pruned meanwhile stores the change and folds nothing.
      const late = change(store, "r", 4, { type: "edit", seq: 2, text: "late" }, msgPost(2));
      store.commit([], [], [late]);
      expect(store.post("r", 2)).toBeUndefined();
      expect(store.roomMeta("r").lastRev).toBe(4);
      store.close();
    });
  });
}

/** Post `seq` of room r as `msg` makes it, as a post. */
function msgPost(seq: number): Post {
  return { type: "chat", room: "r", seq, nick: `n${seq}`, text: `t${seq}`, sentAt: iso(T0 + seq) };
}

describe("SqliteStore: changes on disk", () => {
  it("keeps changes, folds, revs and topics through a close and a reopen", () => {
    const path = tempPath();
    const first = new SqliteStore(path);
    first.commit([msg("r", 1, { userId: "ann" }), msg("r", 2)], []);
    apply(first, "r", 1, [
      { type: "topic", topic: "Kept", nick: "Ann" },
      { type: "edit", seq: 1, text: "edited" },
      react(1, "👍", "bob", "Bob"),
      { type: "delete", seq: 2, by: "Ann" },
    ]);
    const page = first.after("r", 0, 10);
    const changes = first.changes("r", 0, 10, 10);
    first.close();
    const again = new SqliteStore(path);
    expect(again.roomMeta("r")).toStrictEqual({ lastRev: 4, topic: "Kept" });
    expect(again.after("r", 0, 10)).toStrictEqual(page);
    expect(again.changes("r", 0, 10, 10)).toStrictEqual(changes);
    expect(revs(changes)).toStrictEqual([1, 2, 3, 4]);
    expect(again.post("r", 1)?.editedAt).toBe(iso(T0 + 60_002));
    again.close();
  });

  it("keeps nothing of a deleted post's text, mentions or reactions: not in its row, not in the file", async () => {
    const path = tempPath();
    const store = new OpenSqlite(path);
    const secret = "SECRET-never-to-be-seen-again";
    // Enough rows around it that its page keeps other rows, where a freed cell would linger.
    const filler = (from: number, to: number) =>
      Array.from({ length: to - from + 1 }, (_, i) =>
        msg("r", from + i, { text: `filler text ${from + i}` }),
      );
    store.commit(
      [
        ...filler(1, 149),
        msg("r", 150, { userId: "ann", text: secret, mentions: ["Zed-the-named"], mentionIds: ["zed"] }),
        ...filler(151, 300),
      ],
      [],
    );
    apply(store, "r", 1, [
      react(150, "🫥", "zed", "Zed-the-reactor"),
      { type: "delete", seq: 150, by: "Ann" },
    ]);
    expect(
      store.all("SELECT text, edited_at, deleted, reactions, mentions FROM messages WHERE seq = 150"),
    ).toStrictEqual([{ text: "", edited_at: null, deleted: 1, reactions: null, mentions: null }]);
    expect(store.all("SELECT * FROM mentions WHERE room = 'r'")).toStrictEqual([]);
    expect(await counts(store, "zed", "r", 0, 300)).toStrictEqual({ unread: 299, mentions: 0 });
    store.close();
    for (const file of [path, `${path}-wal`]) {
      if (!existsSync(file)) continue;
      const bytes = readFileSync(file);
      // (The reaction's change names who reacted, as the change it is: only the post's own state goes.)
      for (const gone of [secret, "Zed-the-named"]) expect(bytes.includes(gone)).toBe(false);
    }
    // The post itself stays, seq and all.
    const again = new SqliteStore(path);
    expect(again.post("r", 150)).toStrictEqual({
      type: "chat",
      room: "r",
      seq: 150,
      nick: "n150",
      text: "",
      sentAt: iso(T0 + 150),
      userId: "ann",
      deleted: true,
    });
    again.close();
  });

  it("opens a database from before changes: adds the columns and tables, serves old rows, takes changes", async () => {
    const path = tempPath();
    const old = new Database(path, { create: true, strict: true });
    old.run(`CREATE TABLE messages (
      room TEXT NOT NULL, seq INTEGER NOT NULL, nick TEXT NOT NULL, text TEXT NOT NULL,
      sent_at INTEGER NOT NULL, session TEXT NOT NULL, client_id TEXT,
      user_id TEXT, kind TEXT, reply_to INTEGER, mentions TEXT, UNIQUE (room, seq));
      CREATE TABLE sessions (id TEXT PRIMARY KEY, room TEXT NOT NULL, nick TEXT NOT NULL, ended_at INTEGER) WITHOUT ROWID;
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE mentions (room TEXT NOT NULL, user_id TEXT NOT NULL, seq INTEGER NOT NULL,
        PRIMARY KEY (user_id, room, seq)) WITHOUT ROWID;`);
    old.run(
      "INSERT INTO messages VALUES ('lobby', 1, 'ann', 'hello', ?, 's', NULL, NULL, NULL, NULL, NULL)",
      [T0],
    );
    old.run(
      "INSERT INTO messages VALUES ('lobby', 2, 'Bob', 'hi @ann', ?, 's', NULL, 'bob', NULL, NULL, '[\"ann\"]')",
      [T0 + 1],
    );
    old.run("INSERT INTO mentions VALUES ('lobby', 'ann', 2)");
    old.close();

    for (let opening = 0; opening < 2; opening++) {
      const store = new OpenSqlite(path);
      const columns = (store.all("PRAGMA table_info(messages)") as Array<{ name: string }>).map(
        (c) => c.name,
      );
      expect(columns).toEqual(expect.arrayContaining(["edited_at", "deleted", "reactions"]));
      const tables = (
        store.all("SELECT name FROM sqlite_master WHERE type = 'table'") as Array<{ name: string }>
      ).map((t) => t.name);
      expect(tables).toEqual(expect.arrayContaining(["changes", "rooms", "bans"]));
      if (opening === 0) {
        expect(JSON.stringify(store.post("lobby", 1))).toBe(
          JSON.stringify({
            type: "chat",
            room: "lobby",
            seq: 1,
            nick: "ann",
            text: "hello",
            sentAt: iso(T0),
          }),
        );
        expect(store.roomMeta("lobby")).toStrictEqual({ lastRev: 0, topic: "" });
        expect(await counts(store, "ann", "lobby", 0, 2)).toStrictEqual({ unread: 2, mentions: 1 });
        apply(store, "lobby", 1, [{ type: "delete", seq: 2, by: "Bob" }, react(1, "👍", "bob", "Bob")]);
        await call((d) => store.users.ban("lobby", { nickKey: "eve", until: null, by: "mod" }, d));
      }
      expect(store.post("lobby", 2)?.deleted).toBe(true);
      expect(store.post("lobby", 1)?.reactions).toStrictEqual([
        { emoji: "👍", nicks: ["Bob"], ids: ["bob"] },
      ]);
      expect(store.roomMeta("lobby")).toStrictEqual({ lastRev: 2, topic: "" });
      expect(await counts(store, "ann", "lobby", 0, 2)).toStrictEqual({ unread: 1, mentions: 0 });
      expect(await call((d) => store.users.banned("lobby", { nickKey: "eve" }, T0, d))).toStrictEqual({
        nickKey: "eve",
        until: null,
        by: "mod",
      });
      store.close();
    }
  });
});
