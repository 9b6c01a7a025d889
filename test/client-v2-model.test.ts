/** client/v2/room-model.ts on its own: merging syncs, replaying changes, counting, and the browser bundle's contents. */
import { describe, expect, it } from "bun:test";
import type { FoldedPostFrame, RoomStateFrame } from "../client/v2/guards";
import { type Me, RoomModel } from "../client/v2/room-model";

const at = "2025-01-02T03:04:05.678Z";
const ann: Me = { userId: "ua", nick: "ann" };

function state(over: Partial<RoomStateFrame> = {}): RoomStateFrame {
  return {
    room: "lobby",
    topic: "",
    users: ["ann", "bob"],
    lastSeq: 0,
    lastRev: 0,
    readSeq: 0,
    unread: 0,
    mentions: 0,
    ...over,
  };
}

function post(seq: number, over: Partial<FoldedPostFrame> = {}): FoldedPostFrame {
  return { seq, nick: "bob", userId: "ub", text: `p${seq}`, sentAt: at, ...over };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

function model(s: Partial<RoomStateFrame>, posts: FoldedPostFrame[]): RoomModel {
  const m = new RoomModel("lobby");
  m.applyState(state(s));
  m.applySync({ posts, changes: [], truncated: false }, ann);
  return m;
}

describe("RoomModel", () => {
  it("a first sync keeps the newest posts and says older ones exist; a sync request names what is held", () => {
    const m = model(
      { lastSeq: 10, lastRev: 4 },
      range(1, 10).map((s) => post(s)),
    );
    expect(m.syncRequest()).toEqual({ since: 10, sinceRev: 4 });
    const small = new RoomModel("lobby");
    small.applyState(state({ lastSeq: 10 }));
    small.applySync({ posts: range(1, 10).map((s) => post(s)), changes: [], truncated: false }, ann, 4);
    expect(small.posts.map((p) => p.seq)).toEqual([7, 8, 9, 10]);
    expect(small.hasOlder).toBe(true);
    expect(m.hasOlder).toBe(false);
  });

  it("replays a sync's changes over posts already folded: the end state, whatever was applied live", () => {
    const m = model({ lastSeq: 2 }, [post(1), post(2)]);
    const changes = [
      { type: "edit" as const, room: "lobby", rev: 1, seq: 1, text: "first edit", editedAt: at },
      { type: "reaction" as const, room: "lobby", rev: 2, seq: 2, emoji: "👍", nick: "ann", on: true },
      { type: "edit" as const, room: "lobby", rev: 3, seq: 1, text: "second edit", editedAt: at },
      { type: "reaction" as const, room: "lobby", rev: 4, seq: 2, emoji: "👍", nick: "ann", on: false },
      { type: "reaction" as const, room: "lobby", rev: 5, seq: 2, emoji: "🎉", nick: "bob", on: true },
      { type: "topic" as const, room: "lobby", rev: 6, topic: "new", nick: "bob" },
    ];
    // rev 5 came live before the sync's answer, which holds the posts folded as of rev 6.
    m.applyChange(changes[4] as (typeof changes)[number], ann, true);
    m.applySync(
      {
        posts: [
          post(1, { text: "second edit", editedAt: at }),
          post(2, { reactions: [{ emoji: "🎉", nicks: ["bob"] }] }),
        ],
        changes,
        truncated: false,
      },
      ann,
    );
    expect(m.posts.map((p) => [p.text, p.reactions])).toEqual([
      ["second edit", undefined],
      ["p2", [{ emoji: "🎉", nicks: ["bob"] }]],
    ]);
    expect([m.topic, m.appliedRev]).toEqual(["new", 6]);
    // A live change at or below what is applied is a duplicate.
    m.applyChange({ type: "edit", room: "lobby", rev: 3, seq: 1, text: "old", editedAt: at }, ann, true);
    expect(m.posts[0]?.text).toBe("second edit");
    // Reactions are sets: `on` twice holds one nick, `off` for one who never reacted does nothing.
    m.applyChange(
      { type: "reaction", room: "lobby", rev: 7, seq: 2, emoji: "🎉", nick: "bob", on: true },
      ann,
      true,
    );
    m.applyChange(
      { type: "reaction", room: "lobby", rev: 8, seq: 2, emoji: "🎉", nick: "cy", on: false },
      ann,
      true,
    );
    expect(m.posts[1]?.reactions).toEqual([{ emoji: "🎉", nicks: ["bob"] }]);
  });

  it("a truncated sync drops the held posts (a gap may lie before the answer) and ignores its changes", () => {
    const m = model({ lastSeq: 3, lastRev: 1 }, [post(1), post(2), post(3)]);
    m.applyState(state({ lastSeq: 900, lastRev: 9, unread: 897 }));
    m.applySync(
      {
        posts: range(401, 900).map((s) => post(s, s === 401 ? { text: "now" } : {})),
        changes: [{ type: "edit", room: "lobby", rev: 2, seq: 401, text: "then", editedAt: at }],
        truncated: true,
      },
      ann,
      600,
    );
    expect(m.posts.length).toBe(500);
    expect(m.posts[0]).toMatchObject({ seq: 401, text: "now" });
    expect(m.hasOlder).toBe(true);
    expect(m.appliedRev).toBe(9);
    expect(m.unread).toBe(897);
  });

  it("counts posts after the room's known lastSeq once, and recounts from the posts after a read", () => {
    const m = model({ lastSeq: 2, readSeq: 1, unread: 1 }, [post(1), post(2)]);
    expect(m.unread).toBe(1);
    m.addLive(post(3, { mentions: ["ANN"] }), ann);
    m.addLive(post(3, { mentions: ["ANN"] }), ann); // a duplicate
    m.addLive(post(4, { userId: "ua", nick: "ann" }), ann); // our own
    m.addLive(post(5, { mentions: ["аnn"] }), ann); // a Cyrillic а: the same name
    expect([m.unread, m.mentions, m.lastSeq]).toEqual([3, 2, 5]);
    m.applyChange({ type: "delete", room: "lobby", rev: 1, seq: 5, by: "bob" }, ann, true);
    expect([m.unread, m.mentions]).toEqual([2, 1]);
    m.applyRead(3, ann);
    expect([m.readSeq, m.unread, m.mentions]).toEqual([3, 0, 0]);
    m.applyRead(2, ann); // never back
    expect(m.readSeq).toBe(3);
  });

  it("without the posts after the marker, a read takes away what the held posts counted; once they cover it, counts are exact", () => {
    const m = new RoomModel("lobby");
    const bobs = new Set([991, 992, 999, 1000]);
    const by = (s: number) => post(s, bobs.has(s) ? {} : { userId: "ua", nick: "ann" });
    m.applyState(state({ lastSeq: 995, readSeq: 0, unread: 5 }));
    m.applySync({ posts: range(990, 995).map(by), changes: [], truncated: true }, ann);
    expect(m.unread).toBe(5);
    // Back after a drop: two more posts, the sync's answer not in yet.
    m.applyState(state({ lastSeq: 1000, readSeq: 0, unread: 7 }));
    m.applyRead(500, ann); // nothing held in between: the server's count stands
    expect(m.unread).toBe(7);
    m.applyRead(992, ann); // 991 and 992 were counted
    expect(m.unread).toBe(5);
    m.applySync({ posts: range(996, 1000).map(by), changes: [], truncated: false }, ann);
    expect(m.unread).toBe(2);
    m.applyRead(1000, ann);
    expect([m.unread, m.mentions]).toEqual([0, 0]);
  });

  it("a new epoch (or a lastSeq below what is held) starts the posts over", () => {
    const m = model({ lastSeq: 3, epoch: "a" }, [post(1), post(2), post(3)]);
    m.applyState(state({ lastSeq: 3, epoch: "b" }));
    expect(m.posts).toEqual([]);
    expect(m.syncRequest()).toEqual({ since: 0, sinceRev: 0 });
    const n = model({ lastSeq: 3 }, [post(1), post(2), post(3)]);
    n.applyState(state({ lastSeq: 1 }));
    expect(n.posts).toEqual([]);
  });

  it("presence keeps the user list sorted, renames typing notices and a direct room's peer", () => {
    const m = new RoomModel("~x");
    m.applyState(state({ room: "~x", users: ["ann", "bob"], dm: { nick: "bob" } }));
    m.typing.set("bob", Date.now() + 1000);
    m.applyPresence([
      { event: "join", nick: "Cy" },
      { event: "join", nick: "cy" }, // the same name: not twice
      { event: "nick", from: "bob", nick: "Al" },
      { event: "leave", nick: "ann" },
    ]);
    expect(m.users).toEqual(["Al", "Cy"]);
    expect(m.dm).toBe("Al");
    expect(m.view(Date.now()).typing).toEqual(["Al"]);
  });
});

describe("the browser bundle of client/v2", () => {
  it("holds no zod", async () => {
    const built = await Bun.build({ entrypoints: ["client/v2/index.ts"], target: "browser", minify: true });
    expect(built.success).toBe(true);
    const text = await (built.outputs[0] as Blob).text();
    expect(text).toContain("identity_lost"); // it is the client
    expect(text).not.toMatch(/zod|ZodError/i);
    // About 21 KB gzipped today, half of it the Unicode tables of the same-name rule.
    expect(Bun.gzipSync(new TextEncoder().encode(text), { level: 9 }).length).toBeLessThan(30_000);
  });
});
