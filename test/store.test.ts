/** The ChatStore contract, run against every implementation, and a property that they answer alike. */
import { afterAll, afterEach, beforeEach, describe, expect, it } from "bun:test";
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { decodeServerMessage, encode } from "../protocol";
import { MemoryStore } from "../server/engines/local/memory-store";
import { nodeSqlite } from "../server/engines/local/sqlite-node";
import { DatabaseDamaged, DatabaseInUse, SqliteStore } from "../server/engines/local/sqlite-store";
import type { ChatStore, PruneStep, SessionRecord, StoredMessage } from "../server/engines/local/store";

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
  // The driver of the Deno server (sqlite-driver.ts), run here on Bun.
  ["SqliteStore on node:sqlite", () => new SqliteStore(tempPath(), Date.now(), "normal", nodeSqlite)],
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

    describe("prune", () => {
      const all = (room: string) => seqsOf(store.after(room, 0, 1000));

      it("keeps the newest N of each room, and history then starts at the oldest kept", () => {
        fill(store, "lobby", 10);
        fill(store, "other", 3);
        expect(store.prune(4, 0)).toBe(6);
        expect(all("lobby")).toStrictEqual([7, 8, 9, 10]);
        expect(all("other")).toStrictEqual([1, 2, 3]);
        expect(store.before("lobby", 100, 50)).toMatchObject({ more: false });
        expect(seqsOf(store.before("lobby", 9, 5))).toStrictEqual([7, 8]);
        expect(store.before("lobby", 9, 2).more).toBe(false);
        expect(store.before("lobby", 9, 1).more).toBe(true);
        expect(store.lastSeq("lobby")).toBe(10);
        expect(store.prune(4, 0)).toBe(0);
      });

      it("deletes messages sent before a time, but never a room's newest", () => {
        fill(store, "lobby", 10); // message n was sent at T0 + n seconds
        fill(store, "other", 2);
        expect(store.prune(0, T0 + 4500)).toBe(4 + 1);
        expect(all("lobby")).toStrictEqual(range(5, 10));
        expect(all("other")).toStrictEqual([2]);
        expect(store.prune(0, T0 + 1_000_000)).toBe(5);
        expect(all("lobby")).toStrictEqual([10]);
        expect([store.lastSeq("lobby"), store.lastSeq("other")]).toStrictEqual([10, 2]);
        // The store takes the next seqs, and refuses one it had.
        store.commit([msg("lobby", 11)], []);
        expect(() => store.commit([msg("lobby", 11)], [])).toThrow();
        expect(all("lobby")).toStrictEqual([10, 11]);
      });

      it("walks from the oldest and stops at the first message it keeps, so what is left has no hole", () => {
        // The clock went back between 2 and 3: 3 is older than 2.
        const at = [0, 1000, 9000, 2000, 3000, 9500, 9600];
        store.commit(
          range(1, 6).map((seq) => msg("lobby", seq, { sentAt: T0 + (at[seq] as number) })),
          [],
        );
        expect(store.prune(0, T0 + 5000)).toBe(1);
        expect(all("lobby")).toStrictEqual([2, 3, 4, 5, 6]);
        // By count and by age together: 2 is beyond the newest 4, then 3 and 4 are old.
        expect(store.prune(4, T0 + 5000)).toBe(3);
        expect(all("lobby")).toStrictEqual([5, 6]);
      });

      it("keeps everything with both limits at 0, and at least the newest with keep 1", () => {
        fill(store, "lobby", 5);
        expect(store.prune(0, 0)).toBe(0);
        expect(all("lobby")).toStrictEqual(range(1, 5));
        expect(store.prune(1, 0)).toBe(4);
        expect(all("lobby")).toStrictEqual([5]);
        expect(store.prune(0, 0)).toBe(0);
        expect(store.prune(1, Number.MAX_SAFE_INTEGER)).toBe(0);
      });

      it("goes in steps of bounded work that end, all together, where one prune does", () => {
        for (const r of ["a", "b", "c", "d"]) fill(store, r, 23, 7);
        let deleted = 0;
        let steps = 0;
        for (let done = false; !done; steps++) {
          const step = store.pruneStep(6, T0 + 3500, 5);
          expect(step.deleted).toBeLessThanOrEqual(5);
          deleted += step.deleted;
          done = step.done;
          expect(steps).toBeLessThan(100);
        }
        expect(steps).toBeGreaterThanOrEqual((4 * 17) / 5);
        expect(deleted).toBe(4 * 17);
        for (const r of ["a", "b", "c", "d"]) expect(all(r)).toStrictEqual(range(18, 23));
        expect(store.pruneStep(6, T0 + 3500, 5)).toStrictEqual({ deleted: 0, done: true });
      });

      it("does all of its work even when an earlier step, with other arguments, stopped half way", () => {
        for (const r of ["a", "b", "c", "d"]) fill(store, r, 23, 7);
        expect(store.pruneStep(6, 0, 20)).toMatchObject({ done: false });
        expect(store.prune(0, T0 + 20_500)).toBeGreaterThan(0);
        for (const r of ["a", "b", "c", "d"]) expect(all(r)).toStrictEqual(range(21, 23));
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

describe("SqliteStore: one store per database file", () => {
  it("refuses a second store on a file while the first is open, naming the holder's pid; the first works on", () => {
    const path = tempPath();
    const first = new SqliteStore(path);
    fill(first, "lobby", 3);
    let refusal: unknown;
    try {
      new SqliteStore(path).close();
    } catch (err) {
      refusal = err;
    }
    expect(refusal).toBeInstanceOf(DatabaseInUse);
    expect((refusal as DatabaseInUse).message).toBe(
      `${path} is in use by another server process (pid ${process.pid})`,
    );
    first.commit([msg("lobby", 4)], []);
    expect(first.lastSeq("lobby")).toBe(4);
    first.close();

    const second = new SqliteStore(path);
    expect(second.lastSeq("lobby")).toBe(4);
    second.close();
  });

  it("lets another process open the file once the holder ended, even without closing it", () => {
    const path = tempPath();
    const child = Bun.spawnSync([
      process.execPath,
      "-e",
      `const { SqliteStore } = require(${JSON.stringify(join(import.meta.dir, "../server/engines/local/sqlite-store"))});
       const s = new SqliteStore(${JSON.stringify(path)});
       s.commit([{ room: "r", seq: 1, nick: "n", text: "t", sentAt: 1, session: "s", clientId: null }], []);
       process.exit(0); // no close: as if it had crashed`,
    ]);
    expect(child.exitCode).toBe(0);
    const store = new SqliteStore(path);
    expect(store.lastSeq("r")).toBe(1);
    // Not closed cleanly: checked at open.
    expect(store.checkMs).toBeDefined();
    store.close();
  });

  it("takes no lock in memory", () => {
    const a = new SqliteStore(":memory:");
    const b = new SqliteStore(":memory:");
    expect([a.checkMs, b.checkMs]).toStrictEqual([undefined, undefined]);
    a.close();
    b.close();
  });
});

describe("SqliteStore: pruning many rooms", () => {
  it("counts every room it looks at as work, so a step over many rooms with nothing to delete stays short", () => {
    const store = new SqliteStore(":memory:");
    for (let r = 0; r < 50; r++) fill(store, `room-${String(r).padStart(2, "0")}`, 3);
    fill(store, "room-99", 40);
    const steps: PruneStep[] = [];
    for (let done = false; !done; ) {
      const step = store.pruneStep(5, 0, 10);
      steps.push(step);
      done = step.done;
    }
    // 51 rooms at 10 a step; the last one has 35 rows to delete, at most 10 a step.
    expect(steps.length).toBeGreaterThanOrEqual(6 + 3);
    expect(steps.every((s) => s.deleted <= 10)).toBe(true);
    expect(steps.reduce((n, s) => n + s.deleted, 0)).toBe(35);
    expect(seqsOf(store.after("room-99", 0, 100))).toStrictEqual(range(36, 40));
    store.close();
  });
});

describe("SqliteStore: integrity check at open", () => {
  /** Overwrites `bytes` bytes in the middle of the file with pseudo-random garbage. */
  function scribble(path: string, bytes: number): void {
    const garbage = Uint8Array.from({ length: bytes }, (_, i) => (i * 7919 + 13) % 251);
    const fd = openSync(path, "r+");
    writeSync(fd, garbage, 0, bytes, Math.floor(statSync(path).size / 2 / 4096) * 4096);
    closeSync(fd);
  }

  function filled(path: string): void {
    const store = new SqliteStore(path);
    const text = "y".repeat(1200);
    for (let seq = 1; seq <= 200; seq++) store.commit([msg("lobby", seq, { text })], []);
    store.close();
  }

  it("runs on a file not known to be closed cleanly, and not after a clean close that nothing changed since", () => {
    const path = tempPath();
    const fresh = new SqliteStore(path);
    expect(fresh.checkMs).toBeDefined();
    fill(fresh, "lobby", 5);
    fresh.close();

    const again = new SqliteStore(path);
    expect(again.checkMs).toBeUndefined();
    again.close();

    // Changed after the clean close (here only its times): checked again.
    utimesSync(path, new Date(), new Date());
    const touched = new SqliteStore(path);
    expect(touched.checkMs).toBeDefined();
    touched.close();
  });

  it("refuses a damaged file with DatabaseDamaged and leaves it as it was; a later open refuses alike", () => {
    const path = tempPath();
    filled(path);
    scribble(path, 2 * 4096);
    const damaged = readFileSync(path);
    for (let attempt = 1; attempt <= 2; attempt++) {
      let refusal: unknown;
      try {
        new SqliteStore(path).close();
      } catch (err) {
        refusal = err;
      }
      expect(refusal).toBeInstanceOf(DatabaseDamaged);
      expect((refusal as Error).message).toStartWith(`${path} is damaged (`);
    }
    expect(readFileSync(path).equals(damaged)).toBe(true);
    expect(existsSync(`${path}-wal`)).toBe(false);
  });

  it("refuses a file that is not a database at all", () => {
    const path = tempPath();
    writeFileSync(path, "not a database, though long enough to have a header ".repeat(100));
    expect(() => new SqliteStore(path)).toThrow(DatabaseDamaged);
  });

  it("checks again at the next open after storage failed while it was open", () => {
    const path = tempPath();
    class Failing extends SqliteStore {
      pragma(sql: string): unknown {
        return this.db.query(`PRAGMA ${sql}`).get();
      }
    }
    const store = new Failing(path);
    fill(store, "lobby", 3);
    store.close();
    // A refused duplicate seq is no sign of damage: the next open trusts the file.
    const dup = new Failing(path);
    expect(dup.checkMs).toBeUndefined();
    expect(() => dup.commit([msg("lobby", 3)], [])).toThrow();
    dup.close();
    // A write the file refused is: the next open checks it.
    const readOnly = new Failing(path);
    expect(readOnly.checkMs).toBeUndefined();
    readOnly.pragma("query_only = ON");
    expect(() => readOnly.commit([msg("lobby", 4)], [])).toThrow();
    readOnly.pragma("query_only = OFF");
    readOnly.close();
    const next = new SqliteStore(path);
    expect(next.checkMs).toBeDefined();
    next.close();
    const after = new SqliteStore(path);
    expect(after.checkMs).toBeUndefined();
    after.close();
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
      /** How far the clock moves for this batch: backwards too, as a wall clock may. */
      tick: number;
    }
  | { kind: "badCommit"; room: number; count: number }
  | { kind: "before"; room: number; before: number; limit: number }
  | { kind: "after"; room: number; after: number; limit: number }
  | { kind: "recent"; room: number; session: number; limit: number }
  | { kind: "load"; session: number }
  | { kind: "drop"; endedBefore: number }
  /** `age`: delete what is older than the clock's time plus this; null: no age limit. */
  | { kind: "prune"; keep: number; age: number | null; step: number | null };

const room = fc.nat(ROOMS.length - 1);
const session = fc.nat(SESSIONS.length - 1);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("commit" as const),
      room,
      gap: fc.oneof(fc.constant(0), fc.nat(3)),
      count: fc.nat(4),
      session,
      clientIds: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
      ends: fc.option(fc.nat(20)),
      tick: fc.integer({ min: -3, max: 5 }),
    }),
  },
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
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("prune" as const),
      keep: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 5 })),
      age: fc.option(fc.integer({ min: -15, max: 3 })),
      step: fc.option(fc.integer({ min: 1, max: 4 })),
    }),
  },
);

/** Runs one operation; the answer is what the two stores must agree on. `time` is the clock's. */
function run(store: ChatStore, op: Op, clock: number, time: number): unknown {
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
          sentAt: T0 + time + i,
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
    case "prune": {
      const olderThan = op.age === null ? 0 : T0 + time + op.age;
      // At once, or in steps of `step` work until done: the same in the end.
      let deleted = 0;
      if (op.step === null) deleted = store.prune(op.keep, olderThan);
      else {
        for (let done = false; !done; ) {
          const step = store.pruneStep(op.keep, olderThan, op.step);
          deleted += step.deleted;
          done = step.done;
        }
      }
      return [deleted, ...ROOMS.map((name) => [store.lastSeq(name), store.after(name, 0, 1000)])];
    }
  }
}

describe("MemoryStore and SqliteStore", () => {
  it("answer every sequence of commits and queries identically", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
        const memory = new MemoryStore();
        const sqlite = new SqliteStore(":memory:");
        try {
          let time = 10;
          ops.forEach((op, clock) => {
            if (op.kind === "commit") time = Math.max(0, time + op.tick);
            expect({ op, answer: run(sqlite, op, clock, time) }).toStrictEqual({
              op,
              answer: run(memory, op, clock, time),
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
      { numRuns: 300 },
    );
  });
});
