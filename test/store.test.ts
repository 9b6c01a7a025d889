/** The ChatStore contract, run against every implementation, and a property that they answer alike. */
import { afterAll, afterEach, beforeEach, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { decodeServerMessage, encode } from "../protocol";
import { MemoryStore } from "../server/engines/local/memory-store";
import { SqliteStore } from "../server/engines/local/sqlite-store";
import type { ChatStore, SessionRecord, StoredMessage } from "../server/engines/local/store";

const dir = mkdtempSync(join(tmpdir(), "chat-store-test-"));
let files = 0;
const tempPath = () => join(dir, `store-${++files}.db`);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const T0 = Date.UTC(2024, 0, 1);

function msg(room: string, seq: number, fields: Partial<StoredMessage> = {}): StoredMessage {
  return {
    room,
    seq,
    nick: `nick${seq}`,
    text: `text ${seq} in ${room}`,
    sentAt: T0 + seq * 1000,
    session: "s1",
    clientId: null,
    ...fields,
  };
}

/** Messages 1..n of a room, committed in batches of `batch`. */
function fill(store: ChatStore, room: string, n: number, batch = 3): void {
  for (let first = 1; first <= n; first += batch) {
    const seqs = Array.from({ length: Math.min(batch, n - first + 1) }, (_, i) => first + i);
    store.commit(
      seqs.map((seq) => msg(room, seq)),
      [],
    );
  }
}

const seqsOf = (page: { messages: Array<{ seq: number }> }) => page.messages.map((m) => m.seq);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

const implementations: Array<[string, () => ChatStore]> = [
  ["MemoryStore", () => new MemoryStore()],
  ["SqliteStore in memory", () => new SqliteStore(":memory:")],
  ["SqliteStore on a file", () => new SqliteStore(tempPath())],
];

for (const [name, open] of implementations) {
  describe(name, () => {
    let store: ChatStore;
    beforeEach(() => {
      store = open();
    });
    afterEach(() => {
      store.close();
    });

    describe("lastSeq", () => {
      it("is 0 for a room with no messages", () => {
        expect(store.lastSeq("lobby")).toBe(0);
      });

      it("is the newest stored seq, per room", () => {
        fill(store, "lobby", 7);
        fill(store, "other", 2);
        expect(store.lastSeq("lobby")).toBe(7);
        expect(store.lastSeq("other")).toBe(2);
        expect(store.lastSeq("Lobby")).toBe(0);
      });
    });

    describe("before", () => {
      beforeEach(() => {
        fill(store, "lobby", 10);
        fill(store, "other", 4);
      });

      it("gives the newest messages below a seq in ascending order, and says exactly whether older ones exist", () => {
        const cases: Array<[number, number, number[], boolean]> = [
          [11, 3, [8, 9, 10], true],
          [5, 3, [2, 3, 4], true],
          [4, 3, [1, 2, 3], false],
          [2, 1, [1], false],
          [1, 5, [], false],
          [0, 5, [], false],
          [Number.MAX_SAFE_INTEGER, 10, range(1, 10), false],
          [Number.MAX_SAFE_INTEGER, 9, range(2, 10), true],
          [Number.MAX_SAFE_INTEGER, 11, range(1, 10), false],
          [Number.MAX_SAFE_INTEGER, 200, range(1, 10), false],
        ];
        for (const [before, limit, seqs, more] of cases) {
          const page = store.before("lobby", before, limit);
          expect({ before, limit, seqs: seqsOf(page), more: page.more }).toStrictEqual({
            before,
            limit,
            seqs,
            more,
          });
        }
      });

      it("gives an empty page for a room with no messages", () => {
        expect(store.before("empty", Number.MAX_SAFE_INTEGER, 50)).toStrictEqual({
          messages: [],
          more: false,
        });
      });

      it("never mixes rooms", () => {
        const page = store.before("other", Number.MAX_SAFE_INTEGER, 50);
        expect(seqsOf(page)).toStrictEqual([1, 2, 3, 4]);
        expect(page.messages.every((m) => m.room === "other")).toBe(true);
      });

      it("gives wire chat messages, with the time as ISO 8601 in UTC with milliseconds", () => {
        const [first] = store.before("lobby", 2, 1).messages;
        expect(first).toStrictEqual({
          type: "chat",
          room: "lobby",
          seq: 1,
          nick: "nick1",
          text: "text 1 in lobby",
          sentAt: "2024-01-01T00:00:01.000Z",
        });
        const page = store.before("lobby", 11, 10);
        const wire = { type: "history", room: "lobby", messages: page.messages, hasMore: page.more } as const;
        expect(decodeServerMessage(encode(wire))).toStrictEqual({ ok: true, value: wire });
      });
    });

    describe("after", () => {
      beforeEach(() => {
        fill(store, "lobby", 10);
        fill(store, "other", 4);
      });

      it("gives the newest messages above a seq in ascending order, and says exactly whether some were cut", () => {
        const cases: Array<[number, number, number[], boolean]> = [
          [0, 10, range(1, 10), false],
          [0, 11, range(1, 10), false],
          [0, 9, range(2, 10), true],
          [7, 3, [8, 9, 10], false],
          [6, 3, [8, 9, 10], true],
          [9, 1, [10], false],
          [10, 5, [], false],
          [12, 5, [], false],
        ];
        for (const [after, limit, seqs, more] of cases) {
          const page = store.after("lobby", after, limit);
          expect({ after, limit, seqs: seqsOf(page), more: page.more }).toStrictEqual({
            after,
            limit,
            seqs,
            more,
          });
        }
      });

      it("never mixes rooms", () => {
        expect(seqsOf(store.after("other", 0, 50))).toStrictEqual([1, 2, 3, 4]);
        expect(store.after("empty", 0, 50)).toStrictEqual({ messages: [], more: false });
      });
    });

    describe("commit", () => {
      const session: SessionRecord = { id: "s1", room: "lobby", nick: "bob", endedAt: null };

      it("stores nothing, sessions included, when the batch's second message repeats a seq", () => {
        expect(() =>
          store.commit([msg("lobby", 1), msg("lobby", 1, { text: "again" })], [session]),
        ).toThrow();
        expect(store.lastSeq("lobby")).toBe(0);
        expect(store.before("lobby", 100, 50)).toStrictEqual({ messages: [], more: false });
        expect(store.loadSession("s1")).toBeUndefined();
      });

      it("stores nothing when a later message repeats a seq already stored", () => {
        fill(store, "lobby", 3);
        const batch = [msg("other", 1), msg("lobby", 4), msg("lobby", 3, { text: "replaced?" })];
        expect(() => store.commit(batch, [session])).toThrow();
        expect(store.lastSeq("lobby")).toBe(3);
        expect(store.lastSeq("other")).toBe(0);
        expect(store.before("lobby", 4, 1).messages[0]?.text).toBe("text 3 in lobby");
        expect(store.loadSession("s1")).toBeUndefined();
      });

      it("keeps working after a failed batch, reusing the seqs it did not store", () => {
        fill(store, "lobby", 2);
        expect(() => store.commit([msg("lobby", 3), msg("lobby", 2)], [])).toThrow();
        store.commit([msg("lobby", 3, { text: "retry" })], []);
        expect(store.lastSeq("lobby")).toBe(3);
        expect(store.after("lobby", 2, 5).messages.map((m) => m.text)).toStrictEqual(["retry"]);
      });

      it("stores messages of several rooms and sessions in one batch", () => {
        store.commit([msg("a", 1), msg("b", 1), msg("a", 2)], [session]);
        expect([store.lastSeq("a"), store.lastSeq("b")]).toStrictEqual([2, 1]);
        expect(store.loadSession("s1")).toStrictEqual(session);
      });

      it("accepts an empty batch and changes nothing", () => {
        store.commit([], []);
        expect(store.lastSeq("lobby")).toBe(0);
      });
    });

    describe("sessions", () => {
      it("loads what was stored, and nothing for an unknown id", () => {
        const s: SessionRecord = { id: "s1", room: "lobby", nick: "Zoë", endedAt: null };
        store.commit([], [s]);
        expect(store.loadSession("s1")).toStrictEqual(s);
        expect(store.loadSession("s2")).toBeUndefined();
      });

      it("replaces a session stored again under the same id", () => {
        store.commit([], [{ id: "s1", room: "lobby", nick: "bob", endedAt: null }]);
        store.commit([], [{ id: "s1", room: "other", nick: "bobby", endedAt: T0 }]);
        expect(store.loadSession("s1")).toStrictEqual({
          id: "s1",
          room: "other",
          nick: "bobby",
          endedAt: T0,
        });
        store.commit([], [{ id: "s1", room: "other", nick: "bobby", endedAt: null }]);
        expect(store.loadSession("s1")?.endedAt).toBeNull();
      });

      it("hands out copies: changing one does not change the store", () => {
        store.commit([], [{ id: "s1", room: "lobby", nick: "bob", endedAt: null }]);
        const loaded = store.loadSession("s1") as SessionRecord;
        loaded.nick = "mallory";
        expect(store.loadSession("s1")?.nick).toBe("bob");
      });

      it("drops sessions that ended before the given time, and only those", () => {
        store.commit(
          [],
          [
            { id: "early", room: "r", nick: "a", endedAt: T0 - 1 },
            { id: "edge", room: "r", nick: "b", endedAt: T0 },
            { id: "late", room: "r", nick: "c", endedAt: T0 + 1 },
            { id: "open", room: "r", nick: "d", endedAt: null },
          ],
        );
        store.dropSessions(T0);
        expect(
          ["early", "edge", "late", "open"].map((id) => store.loadSession(id) !== undefined),
        ).toStrictEqual([false, true, true, true]);
      });
    });

    describe("recentClientIds", () => {
      beforeEach(() => {
        store.commit(
          [
            msg("lobby", 1, { clientId: "c1" }),
            msg("lobby", 2, { clientId: null }),
            msg("lobby", 3, { clientId: "c3" }),
            msg("lobby", 4, { clientId: "x4", session: "s2" }),
            msg("other", 1, { clientId: "o1" }),
            msg("lobby", 5, { clientId: "c5" }),
            msg("lobby", 6, { clientId: "c6" }),
          ],
          [],
        );
      });

      it("gives a session's client references in a room, newest first, with their seqs", () => {
        expect(store.recentClientIds("s1", "lobby", 10)).toStrictEqual([
          ["c6", 6],
          ["c5", 5],
          ["c3", 3],
          ["c1", 1],
        ]);
        expect(store.recentClientIds("s2", "lobby", 10)).toStrictEqual([["x4", 4]]);
        expect(store.recentClientIds("s1", "other", 10)).toStrictEqual([["o1", 1]]);
      });

      it("gives at most `limit` of them, the newest", () => {
        expect(store.recentClientIds("s1", "lobby", 2)).toStrictEqual([
          ["c6", 6],
          ["c5", 5],
        ]);
        expect(store.recentClientIds("s1", "lobby", 0)).toStrictEqual([]);
      });

      it("gives none for an unknown session or room", () => {
        expect(store.recentClientIds("nobody", "lobby", 10)).toStrictEqual([]);
        expect(store.recentClientIds("s1", "nowhere", 10)).toStrictEqual([]);
      });
    });
  });
}

describe("SqliteStore on a file", () => {
  it("keeps messages and sessions across close and reopen", () => {
    const path = tempPath();
    const first = new SqliteStore(path);
    fill(first, "lobby", 8);
    first.commit(
      [msg("lobby", 9, { clientId: "c9" })],
      [{ id: "s1", room: "lobby", nick: "bob", endedAt: T0 }],
    );
    const before = first.before("lobby", 100, 50);
    first.close();

    const again = new SqliteStore(path);
    try {
      expect(again.lastSeq("lobby")).toBe(9);
      expect(again.before("lobby", 100, 50)).toStrictEqual(before);
      expect(again.recentClientIds("s1", "lobby", 5)).toStrictEqual([["c9", 9]]);
      expect(again.loadSession("s1")).toStrictEqual({ id: "s1", room: "lobby", nick: "bob", endedAt: T0 });
      again.commit([msg("lobby", 10)], []);
      expect(again.lastSeq("lobby")).toBe(10);
    } finally {
      again.close();
    }
  });

  it("marks sessions left open by a crash as ended at reopen, and leaves ended ones alone", () => {
    const path = tempPath();
    const first = new SqliteStore(path);
    first.commit(
      [],
      [
        { id: "open", room: "lobby", nick: "bob", endedAt: null },
        { id: "ended", room: "lobby", nick: "amy", endedAt: T0 },
      ],
    );
    first.close();

    const reopenedAt = T0 + 5000;
    const again = new SqliteStore(path, reopenedAt);
    try {
      expect(again.loadSession("open")).toStrictEqual({
        id: "open",
        room: "lobby",
        nick: "bob",
        endedAt: reopenedAt,
      });
      expect(again.loadSession("ended")?.endedAt).toBe(T0);
    } finally {
      again.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// MemoryStore and SqliteStore answer every sequence of commits and queries alike.

const ROOMS = ["lobby", "other"];
const SESSIONS = ["s0", "s1", "s2"];

type Op =
  | {
      kind: "commit";
      room: number;
      gap: number;
      count: number;
      session: number;
      clientIds: boolean[];
      ends: number | null;
    }
  | { kind: "badCommit"; room: number; count: number }
  | { kind: "before"; room: number; before: number; limit: number }
  | { kind: "after"; room: number; after: number; limit: number }
  | { kind: "recent"; room: number; session: number; limit: number }
  | { kind: "load"; session: number }
  | { kind: "drop"; endedBefore: number };

const room = fc.nat(ROOMS.length - 1);
const session = fc.nat(SESSIONS.length - 1);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant("commit" as const),
    room,
    gap: fc.oneof(fc.constant(0), fc.nat(3)),
    count: fc.nat(4),
    session,
    clientIds: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
    ends: fc.option(fc.nat(20)),
  }),
  fc.record({ kind: fc.constant("badCommit" as const), room, count: fc.nat(3) }),
  fc.record({
    kind: fc.constant("before" as const),
    room,
    before: fc.nat(25),
    limit: fc.integer({ min: 1, max: 6 }),
  }),
  fc.record({
    kind: fc.constant("after" as const),
    room,
    after: fc.nat(25),
    limit: fc.integer({ min: 1, max: 6 }),
  }),
  fc.record({ kind: fc.constant("recent" as const), room, session, limit: fc.nat(5) }),
  fc.record({ kind: fc.constant("load" as const), session }),
  fc.record({ kind: fc.constant("drop" as const), endedBefore: fc.nat(20) }),
);

/** Runs one operation; the answer is what the two stores must agree on. */
function run(store: ChatStore, op: Op, clock: number): unknown {
  const r = "room" in op ? (ROOMS[op.room] as string) : "";
  switch (op.kind) {
    case "commit": {
      // Seqs increase; a gap (left by a failed flush elsewhere) is allowed.
      const first = store.lastSeq(r) + 1 + op.gap;
      const s = SESSIONS[op.session] as string;
      const messages = Array.from({ length: op.count }, (_, i) =>
        msg(r, first + i, {
          session: s,
          clientId: op.clientIds[i] ? `c${clock}-${i}` : null,
          sentAt: T0 + clock,
        }),
      );
      store.commit(messages, [{ id: s, room: r, nick: `n${clock}`, endedAt: op.ends }]);
      return store.lastSeq(r);
    }
    case "badCommit": {
      // Valid next messages, then one that repeats a seq: the whole batch must be refused.
      const first = store.lastSeq(r) + 1;
      const messages = Array.from({ length: op.count }, (_, i) => msg(r, first + i));
      messages.push(msg(r, Math.max(1, first - 1 + op.count)));
      if (first === 1 && op.count === 0) messages.push(msg(r, 1));
      try {
        store.commit(messages, [{ id: "bad", room: r, nick: "bad", endedAt: null }]);
        return "stored";
      } catch {
        return ["refused", store.lastSeq(r), store.loadSession("bad")];
      }
    }
    case "before":
      return store.before(r, op.before, op.limit);
    case "after":
      return store.after(r, op.after, op.limit);
    case "recent":
      return store.recentClientIds(SESSIONS[op.session] as string, r, op.limit);
    case "load":
      return store.loadSession(SESSIONS[op.session] as string) ?? null;
    case "drop":
      store.dropSessions(op.endedBefore);
      return SESSIONS.map((id) => store.loadSession(id) ?? null);
  }
}

describe("MemoryStore and SqliteStore", () => {
  it("answer every sequence of commits and queries identically", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
        const memory = new MemoryStore();
        const sqlite = new SqliteStore(":memory:");
        try {
          ops.forEach((op, clock) => {
            expect({ op, answer: run(sqlite, op, clock) }).toStrictEqual({
              op,
              answer: run(memory, op, clock),
            });
          });
          for (const r of ROOMS) {
            expect(sqlite.after(r, 0, 1000)).toStrictEqual(memory.after(r, 0, 1000));
          }
        } finally {
          memory.close();
          sqlite.close();
        }
      }),
      { numRuns: 60 },
    );
  });
});
