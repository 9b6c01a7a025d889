/** Mirror tests of server/chat/replica.ts: snapshot, presence, pages, the bound on recent messages, waiters, load state. */
import { describe, expect, it } from "bun:test";
import fc from "fast-check";
import { type ChatMessage, LIMITS, type PresenceEvent } from "../../protocol";
import type { RoomSnapshot } from "../../server/chat/engine";
import { RECENT_MESSAGES, Replica } from "../../server/chat/replica";

const ROOM = "lobby";

function chat(seq: number): ChatMessage {
  return { type: "chat", room: ROOM, seq, nick: "ann", text: `m${seq}`, sentAt: new Date(seq).toISOString() };
}

/** Chats with seqs from..to, both included. */
function chats(from: number, to: number): ChatMessage[] {
  const out: ChatMessage[] = [];
  for (let seq = from; seq <= to; seq++) out.push(chat(seq));
  return out;
}

const seqs = (messages: ChatMessage[]): number[] => messages.map((m) => m.seq);

/** A replica loaded from a snapshot whose recent messages are 1..lastSeq (the replica keeps the newest). */
function loaded(snapshot: Partial<RoomSnapshot> = {}): Replica {
  const lastSeq = snapshot.lastSeq ?? 0;
  const replica = new Replica(ROOM);
  replica.applySnapshot({ lastN: 0, users: [], recent: chats(1, lastSeq), ...snapshot, lastSeq });
  return replica;
}

/** Applies chats lastSeq+1..lastSeq+count as the log would. */
function chatMore(replica: Replica, count: number): void {
  for (let i = 0; i < count; i++) replica.applyChat(chat(replica.lastSeq + 1));
}

/** Every message the replica still keeps (a limit larger than any room). */
const kept = (replica: Replica): ChatMessage[] => replica.latest(Number.MAX_SAFE_INTEGER).messages;

describe("Replica snapshot", () => {
  it("starts unloaded on the room's topic", () => {
    const replica = new Replica(ROOM);
    expect([replica.loaded, replica.broken, replica.lastN, replica.lastSeq]).toEqual([false, false, 0, 0]);
    expect(replica.topic).toBe(`room:${ROOM}`);
  });

  it("takes lastSeq, lastN, users and recent messages from the snapshot", () => {
    const replica = loaded({ lastSeq: 7, lastN: 12, users: ["bob", "Ann"] });
    expect(replica.loaded).toBe(true);
    expect([replica.lastSeq, replica.lastN]).toEqual([7, 12]);
    expect(replica.sortedUsers()).toEqual(["Ann", "bob"]);
    expect(seqs(replica.latest(50).messages)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it("keeps only the newest RECENT_MESSAGES (LIMITS.sinceMax) of a larger snapshot", () => {
    expect(RECENT_MESSAGES).toBe(LIMITS.sinceMax);
    const replica = loaded({ lastSeq: RECENT_MESSAGES + 30 });
    expect(seqs(kept(replica))).toEqual(seqs(chats(31, RECENT_MESSAGES + 30)));
  });

  it("a second snapshot replaces the users and messages of the first", () => {
    const replica = loaded({ lastSeq: 3, users: ["ann", "bob"] });
    replica.applySnapshot({ lastSeq: 9, lastN: 20, users: ["cy"], recent: chats(8, 9) });
    expect(replica.sortedUsers()).toEqual(["cy"]);
    expect([replica.lastSeq, replica.lastN]).toEqual([9, 20]);
    expect(seqs(kept(replica))).toEqual([8, 9]);
  });
});

describe("Replica presence", () => {
  const apply = (replica: Replica, ...events: PresenceEvent[]) => {
    for (const e of events) replica.applyPresence(e);
  };

  it("adds a user on join and removes them on leave, whatever the case of the leave", () => {
    const replica = loaded({ users: ["ann"] });
    apply(replica, { event: "join", nick: "Bob" });
    expect(replica.sortedUsers()).toEqual(["ann", "Bob"]);
    apply(replica, { event: "leave", nick: "ANN" });
    expect(replica.sortedUsers()).toEqual(["Bob"]);
    expect([...replica.users.values()]).toEqual(["Bob"]);
  });

  it("replaces the old nick with the new one on a rename", () => {
    const replica = loaded({ users: ["ann", "bob"] });
    apply(replica, { event: "nick", from: "ann", nick: "zed" });
    expect(replica.sortedUsers()).toEqual(["bob", "zed"]);
  });

  it("a rename that only changes case keeps one user, listed with the new spelling", () => {
    const replica = loaded({ users: ["ann"] });
    apply(replica, { event: "nick", from: "ann", nick: "ANN" });
    expect(replica.sortedUsers()).toEqual(["ANN"]);
    expect(replica.users.size).toBe(1);
  });

  it("lists users case-insensitively, not by code unit", () => {
    const replica = loaded({ users: ["carol", "Bob", "alice", "Dave", "_x", "Émile", "eve"] });
    // Code-unit order would put "Bob" and "Dave" before "alice"; é sorts after every ASCII letter.
    expect(replica.sortedUsers()).toEqual(["_x", "alice", "Bob", "carol", "Dave", "eve", "Émile"]);
  });

  it("holds one user per case-insensitive key, so its order never meets a tie: the later spelling wins", () => {
    // compareNicks breaks ties by the exact string, but users is keyed by nickKey, so no two entries tie.
    const replica = loaded({ users: ["Ann", "ann"] });
    expect(replica.sortedUsers()).toEqual(["ann"]);
  });

  it("recomputes the sorted list after every change, not only the first", () => {
    const replica = loaded({ users: ["bob"] });
    expect(replica.sortedUsers()).toEqual(["bob"]);
    apply(replica, { event: "join", nick: "ann" });
    expect(replica.sortedUsers()).toEqual(["ann", "bob"]);
    apply(replica, { event: "leave", nick: "bob" });
    expect(replica.sortedUsers()).toEqual(["ann"]);
    replica.applySnapshot({ lastSeq: 0, lastN: 0, users: ["cy"], recent: [] });
    expect(replica.sortedUsers()).toEqual(["cy"]);
  });
});

describe("Replica.latest", () => {
  it("is empty and complete in an empty room", () => {
    expect(loaded().latest(50)).toEqual({ messages: [], more: false });
  });

  it("returns every message, without more, when the room has no more than the limit", () => {
    const page = loaded({ lastSeq: 50 }).latest(50);
    expect(seqs(page.messages)).toEqual(seqs(chats(1, 50)));
    expect(page.more).toBe(false);
  });

  it("returns the newest `limit` with more when older ones exist", () => {
    const page = loaded({ lastSeq: 51 }).latest(50);
    expect(seqs(page.messages)).toEqual(seqs(chats(2, 51)));
    expect(page.more).toBe(true);
  });

  it("says more when the snapshot starts after seq 1, even if it holds fewer than the limit", () => {
    const replica = loaded({ lastSeq: 900, recent: chats(891, 900) });
    expect(seqs(replica.latest(50).messages)).toEqual(seqs(chats(891, 900)));
    expect(replica.latest(50).more).toBe(true);
  });

  it("follows chats applied after the snapshot", () => {
    const replica = loaded({ lastSeq: 2 });
    chatMore(replica, 3);
    expect(replica.lastSeq).toBe(5);
    expect(replica.latest(2)).toEqual({ messages: chats(4, 5), more: true });
  });
});

describe("Replica.after", () => {
  const replica = loaded({ lastSeq: 20 });

  it("is empty when nothing was missed, or when since is ahead of the room", () => {
    expect(replica.after(20, 10)).toEqual({ messages: [], more: false });
    expect(replica.after(25, 10)).toEqual({ messages: [], more: false });
  });

  it("returns every missed message, without more, up to the limit", () => {
    expect(replica.after(17, 10)).toEqual({ messages: chats(18, 20), more: false });
    expect(replica.after(10, 10)).toEqual({ messages: chats(11, 20), more: false });
    expect(replica.after(0, 20)).toEqual({ messages: chats(1, 20), more: false });
  });

  it("returns the newest `limit` messages with more when more than the limit were missed", () => {
    expect(replica.after(9, 10)).toEqual({ messages: chats(11, 20), more: true });
    expect(replica.after(0, 5)).toEqual({ messages: chats(16, 20), more: true });
  });
});

describe("Replica's recent messages", () => {
  it("stay bounded after thousands of chats, and still answer pages of LIMITS.sinceMax", () => {
    const replica = loaded();
    for (let i = 0; i < 5000; i++) {
      chatMore(replica, 1);
      // Trimmed lazily: never more than twice the bound, and never fewer than a full page.
      const count = kept(replica).length;
      expect(count).toBeLessThan(2 * RECENT_MESSAGES);
      expect(count).toBeGreaterThanOrEqual(Math.min(replica.lastSeq, RECENT_MESSAGES));
    }
    expect(seqs(replica.latest(LIMITS.sinceMax).messages)).toEqual(seqs(chats(4501, 5000)));
    expect(replica.after(0, LIMITS.sinceMax)).toEqual({ messages: chats(4501, 5000), more: true });
    expect(replica.after(4500, LIMITS.sinceMax)).toEqual({ messages: chats(4501, 5000), more: false });
    expect(replica.after(4499, LIMITS.sinceMax)).toEqual({ messages: chats(4501, 5000), more: true });
    expect(replica.after(4990, LIMITS.sinceMax)).toEqual({ messages: chats(4991, 5000), more: false });
  });
});

describe("Replica waiters", () => {
  it("runs a waiter at once when its entry is applied and nothing is held", () => {
    const replica = loaded({ lastN: 4 });
    const ran: string[] = [];
    replica.at(4, () => ran.push("at 4"));
    replica.at(1, () => ran.push("at 1"));
    expect(ran).toEqual(["at 4", "at 1"]);
    expect(replica.waiters).toEqual([]);
  });

  it("queues a waiter whose entry is not applied yet, and hands it out once it is", () => {
    const replica = loaded({ lastN: 4 });
    const ran: string[] = [];
    replica.at(6, () => ran.push("at 6"));
    replica.at(5, () => ran.push("at 5"));
    expect(ran).toEqual([]);
    expect(replica.takeDue()).toEqual([]);

    replica.lastN = 5;
    for (const run of replica.takeDue()) run();
    expect(ran).toEqual(["at 5"]);
    expect(replica.waiters.map((w) => w.at)).toEqual([6]);

    replica.lastN = 6;
    for (const run of replica.takeDue()) run();
    expect(ran).toEqual(["at 5", "at 6"]);
    expect(replica.takeDue()).toEqual([]);
  });

  it("queues even an applied entry's waiter while presence is held", () => {
    const replica = loaded({ lastN: 4 });
    replica.held = [{ event: "join", nick: "ann" }];
    let ran = 0;
    replica.at(3, () => ran++);
    expect(ran).toBe(0);
    expect(replica.waiters.map((w) => w.at)).toEqual([3]);
    // takeDue leaves the held check to Delivery, which publishes the held presence first.
    replica.held = [];
    for (const run of replica.takeDue()) run();
    expect(ran).toBe(1);
  });
});

describe("Replica.whenLoaded", () => {
  it("waits for the snapshot, then runs each callback once without an error", () => {
    const replica = new Replica(ROOM);
    const got: unknown[] = [];
    replica.whenLoaded((err) => got.push(err ?? "ok 1"));
    replica.whenLoaded((err) => got.push(err ?? "ok 2"));
    expect(got).toEqual([]);
    replica.applySnapshot({ lastSeq: 0, lastN: 0, users: [], recent: [] });
    expect(got).toEqual(["ok 1", "ok 2"]);
    replica.applySnapshot({ lastSeq: 0, lastN: 0, users: [], recent: [] });
    expect(got).toEqual(["ok 1", "ok 2"]);
  });

  it("runs at once once loaded", () => {
    const replica = loaded();
    let got: unknown = "not called";
    replica.whenLoaded((err) => {
      got = err;
    });
    expect(got).toBeUndefined();
  });

  it("hands the load error to those waiting, and an error at once to those after", () => {
    const replica = new Replica(ROOM);
    const boom = new Error("store down");
    const got: unknown[] = [];
    replica.whenLoaded((err) => got.push(err));
    replica.loadFailed(boom);
    expect(got).toEqual([boom]);
    expect([replica.broken, replica.loaded]).toEqual([true, false]);

    let later: unknown;
    replica.whenLoaded((err) => {
      later = err;
    });
    expect(later).toBeInstanceOf(Error);
    expect(String(later)).toContain(ROOM);
  });
});

describe("Replica.after, as a property", () => {
  it("equals the model: messages with seq > since, the newest `limit` of them, more = count > limit", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1200 }),
        fc.integer({ min: 0, max: 1200 }),
        fc.integer({ min: 1, max: LIMITS.sinceMax }),
        fc.double({ min: -0.01, max: 1.01, noNaN: true }),
        (snapshotSeq, applied, limit, sinceAt) => {
          const replica = loaded({ lastSeq: snapshotSeq });
          chatMore(replica, applied);
          const lastSeq = snapshotSeq + applied;
          const since = Math.round(sinceAt * lastSeq);
          const missed = chats(1, lastSeq).filter((m) => m.seq > since);
          const model = {
            messages: missed.slice(Math.max(0, missed.length - limit)),
            more: missed.length > limit,
          };
          expect(replica.after(since, limit)).toEqual(model);
        },
      ),
      { numRuns: 150 },
    );
  });
});
