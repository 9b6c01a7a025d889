/** The timeline's rows: day separators, the "New messages" line, grouping by author, folded presence. */
import { describe, expect, it } from "bun:test";
import {
  buildRows,
  dayLabel,
  GROUP_MS,
  type PresenceNote,
  type Row,
  summarizePresence,
} from "../client/page/timeline-model";
import type { ClientPost } from "../client/v2/api";

const T0 = new Date(2026, 2, 10, 9, 0, 0).getTime();
const MIN = 60_000;

function post(seq: number, nick: string, at: number, extra: Partial<ClientPost> = {}): ClientPost {
  return {
    room: "r",
    seq,
    nick,
    userId: `u-${nick}`,
    text: `text ${seq}`,
    sentAt: new Date(at).toISOString(),
    ...extra,
  };
}

/** A compact picture of rows: D day, U unread, Hn head of seq n, Cn continuation, P(...) presence, N note. */
function shape(rows: Row[]): string[] {
  return rows.map((r) => {
    switch (r.kind) {
      case "day":
        return "D";
      case "unread":
        return "U";
      case "post":
        return `${r.head ? "H" : "C"}${r.post.seq}`;
      case "presence":
        return `P(${r.notes.length})`;
      default:
        return "N";
    }
  });
}

describe("grouping", () => {
  it("shows an author's run of posts under one head while they stay within a few minutes", () => {
    const posts = [
      post(1, "ann", T0),
      post(2, "ann", T0 + MIN),
      post(3, "ann", T0 + MIN + GROUP_MS + 1),
      post(4, "bob", T0 + 10 * MIN),
      post(5, "ann", T0 + 11 * MIN),
    ];
    expect(shape(buildRows(posts, []))).toEqual(["D", "H1", "C2", "H3", "H4", "H5"]);
  });

  it("gives an action its own head and starts a new group after it", () => {
    const posts = [post(1, "ann", T0), post(2, "ann", T0 + 1, { kind: "action" }), post(3, "ann", T0 + 2)];
    expect(shape(buildRows(posts, []))).toEqual(["D", "H1", "H2", "H3"]);
  });

  it("tells apart two users who share a nick over time", () => {
    const posts = [post(1, "ann", T0), { ...post(2, "ann", T0 + 1), userId: "other" }];
    expect(shape(buildRows(posts, []))).toEqual(["D", "H1", "H2"]);
  });
});

describe("day separators", () => {
  it("puts one before the first post and one at each change of day", () => {
    const day = 24 * 60 * MIN;
    const posts = [
      post(1, "ann", T0),
      post(2, "ann", T0 + MIN),
      post(3, "ann", T0 + day),
      post(4, "bob", T0 + 3 * day),
    ];
    const rows = buildRows(posts, []);
    expect(shape(rows)).toEqual(["D", "H1", "C2", "D", "H3", "D", "H4"]);
  });

  it("names days in words", () => {
    const now = new Date(2026, 2, 10, 15, 0).getTime();
    expect(dayLabel(new Date(2026, 2, 10, 0, 5).getTime(), now)).toBe("Today");
    expect(dayLabel(new Date(2026, 2, 9, 23, 59).getTime(), now)).toBe("Yesterday");
    expect(dayLabel(new Date(2026, 2, 6, 12).getTime(), now, "en-GB")).toBe("Friday");
    expect(dayLabel(new Date(2026, 0, 2, 12).getTime(), now, "en-GB")).toBe("Friday 2 January");
    expect(dayLabel(new Date(2025, 11, 24, 12).getTime(), now, "en-GB")).toBe("24 December 2025");
  });
});

describe("the New messages line", () => {
  it("sits before the first post by someone else after the marker", () => {
    const posts = [post(1, "ann", T0), post(2, "me", T0 + 1), post(3, "bob", T0 + 2), post(4, "bob", T0 + 3)];
    const rows = buildRows(posts, [], { unreadAfter: 1, isOwn: (p) => p.nick === "me" });
    expect(shape(rows)).toEqual(["D", "H1", "H2", "U", "H3", "C4"]);
  });

  it("is absent when nothing new came", () => {
    expect(shape(buildRows([post(1, "ann", T0)], [], { unreadAfter: 1 }))).toEqual(["D", "H1"]);
  });
});

describe("presence", () => {
  const note = (id: number, afterSeq: number, kind: "join" | "leave", nick: string): PresenceNote => ({
    id,
    at: T0 + id,
    afterSeq,
    kind,
    nick,
  });

  it("folds a run of joins and leaves into one row after the post it followed, and breaks groups", () => {
    const posts = [post(1, "ann", T0), post(2, "ann", T0 + 10)];
    const notes = [note(1, 1, "join", "bob"), note(2, 1, "join", "cy"), note(3, 1, "join", "dee")];
    const rows = buildRows(posts, notes);
    expect(shape(rows)).toEqual(["D", "H1", "P(3)", "H2"]);
  });

  it("says how many people joined, and who, in words", () => {
    const joins = ["ann", "bob", "cy"].map((n, i) => note(i, 0, "join", n));
    expect(summarizePresence(joins)).toEqual({
      text: "3 people joined",
      detail: "Joined: ann, bob, cy",
    });
    expect(summarizePresence([note(1, 0, "join", "ann"), note(2, 0, "join", "bob")]).text).toBe(
      "ann and bob joined",
    );
    expect(
      summarizePresence([
        note(1, 0, "join", "ann"),
        note(2, 0, "leave", "bob"),
        { id: 3, at: T0, afterSeq: 0, kind: "rename", from: "cy", to: "cyd" },
      ]).text,
    ).toBe("ann joined · bob left · cy is now known as cyd");
  });

  it("puts notes from before the oldest post held at the top", () => {
    const rows = buildRows([post(5, "ann", T0 + 100)], [note(1, 2, "join", "bob")]);
    expect(shape(rows)).toEqual(["D", "P(1)", "H5"]);
  });
});
