/** client/v2/guards.ts: the hand-written frame checks agree with the protocol's zod schemas on what they look at, and never throw. */
import { describe, expect, it } from "bun:test";
import fc from "fast-check";
import { guardFrame, parseFrame } from "../client/v2/guards";
import { v2 } from "../protocol";

const at = "2025-01-02T03:04:05.678Z";
const roomState = {
  room: "lobby",
  topic: "hello",
  users: ["ann", "bob"],
  lastSeq: 4,
  lastRev: 2,
  readSeq: 3,
  unread: 1,
  mentions: 0,
};
const folded = {
  seq: 2,
  nick: "ann",
  userId: "u1",
  text: "hi @bob",
  sentAt: at,
  kind: "action",
  replyTo: 1,
  mentions: ["bob"],
  editedAt: at,
  reactions: [{ emoji: "👍", nicks: ["bob"] }],
};
const edit = { type: "edit", room: "lobby", rev: 1, seq: 2, text: "x", editedAt: at };
const del = { type: "delete", room: "lobby", rev: 2, seq: 3, by: "ann" };
const reaction = { type: "reaction", room: "lobby", rev: 3, seq: 2, emoji: "👍", nick: "bob", on: true };
const topic = { type: "topic", room: "lobby", rev: 4, topic: "", nick: "bob" };

/** One valid frame of every type a v2 server sends, each with its optional fields present. */
const SAMPLES: Array<Record<string, unknown>> = [
  {
    type: "welcome",
    protocol: 2,
    connectionId: "c1",
    user: { userId: "u1", nick: "ann" },
    identityToken: "t.sig",
    rooms: [roomState, { ...roomState, room: "~abc", dm: { nick: "bob" }, epoch: "e1" }],
  },
  { type: "joined", ...roomState, dm: { nick: "bob" }, epoch: "e1" },
  { type: "parted", room: "lobby" },
  {
    type: "chat",
    room: "lobby",
    seq: 5,
    nick: "ann",
    text: "hi",
    sentAt: at,
    userId: "u1",
    kind: "action",
    replyTo: 2,
    mentions: ["bob"],
  },
  {
    type: "sync",
    room: "lobby",
    posts: [folded, { seq: 3, nick: "bob", userId: "v1:bob", text: "", sentAt: at, deleted: true }],
    changes: [edit, del, reaction, topic],
    truncated: true,
  },
  { type: "history", room: "lobby", messages: [folded], hasMore: false },
  edit,
  del,
  reaction,
  topic,
  { type: "kicked", room: "lobby", by: "mod", reason: "flood", until: at },
  { type: "read", room: "lobby", seq: 0 },
  {
    type: "presence",
    room: "lobby",
    events: [
      { event: "join", nick: "cy" },
      { event: "leave", nick: "cy" },
      { event: "nick", from: "ann", nick: "anna" },
    ],
  },
  { type: "users", room: "lobby", users: ["ann"] },
  { type: "ack", id: "m1", seq: 5 },
  { type: "typing", room: "lobby", nick: "bob" },
  { type: "error", code: "not_found", message: "no such post", id: "r1" },
];

/** A value of another JSON type than `v`. */
function wrongType(v: unknown): unknown {
  if (typeof v === "string") return 5;
  if (typeof v === "number") return String(v);
  if (typeof v === "boolean") return "true";
  if (Array.isArray(v)) return "list";
  return 7;
}

describe("v2 frame guards", () => {
  it("accept one frame of every type (which the zod schemas accept too)", () => {
    const types = new Set<string>();
    for (const frame of SAMPLES) {
      expect(v2.ServerMessageV2.safeParse(frame).success).toBe(true);
      const guarded = guardFrame(frame);
      expect(guarded).toEqual({ ok: true, frame: frame as never });
      expect(parseFrame(JSON.stringify(frame)).ok).toBe(true);
      types.add(frame.type as string);
    }
    expect(types.size).toBe(17);
  });

  it("refuse a frame missing any required field, or with any field of the wrong type", () => {
    let cases = 0;
    for (const frame of SAMPLES) {
      for (const key of Object.keys(frame)) {
        const bent = { ...frame, [key]: wrongType(frame[key]) };
        expect(v2.ServerMessageV2.safeParse(bent).success).toBe(false);
        const guarded = guardFrame(bent);
        expect(guarded.ok).toBe(false);
        if (!guarded.ok && key !== "type") expect(guarded.reason).toContain(key);
        const { [key]: _gone, ...without } = frame;
        const optional = v2.ServerMessageV2.safeParse(without).success;
        expect(guardFrame(without).ok).toBe(optional);
        cases += 2;
      }
    }
    expect(cases).toBeGreaterThan(150);
  });

  it("look inside lists: a bad post, change, reaction or presence event sinks the frame", () => {
    const sync = SAMPLES.find((f) => f.type === "sync") as Record<string, unknown>;
    const bad = [
      { ...sync, posts: [{ ...folded, seq: 0 }] },
      { ...sync, posts: [{ ...folded, reactions: [{ emoji: "👍", nicks: [1] }] }] },
      { ...sync, posts: [{ ...folded, deleted: false }] },
      { ...sync, changes: [{ ...edit, type: "rename" }] },
      { ...sync, changes: [{ ...reaction, on: "yes" }] },
      { type: "presence", room: "lobby", events: [{ event: "nick", nick: "x" }] },
      { type: "presence", room: "lobby", events: [{ event: "wave", nick: "x" }] },
      { type: "welcome", protocol: 1, connectionId: "c", user: { userId: "u", nick: "n" }, rooms: [] },
      { type: "welcome", protocol: 2, connectionId: "c", user: { userId: "u", nick: "n" }, rooms: [{}] },
      { type: "chat", room: "l", seq: 1.5, nick: "n", text: "t", sentAt: at, userId: "u" },
      { type: "ack", id: "m", seq: Number.NaN },
    ];
    for (const frame of bad) {
      expect(guardFrame(frame).ok).toBe(false);
      expect(v2.ServerMessageV2.safeParse(frame).success).toBe(false);
    }
  });

  it("refuse what is not a frame: not text, not JSON, not an object, no or unknown type", () => {
    expect(parseFrame(new ArrayBuffer(2))).toEqual({ ok: false, reason: "not a text frame" });
    expect(parseFrame("{")).toEqual({ ok: false, reason: "not JSON" });
    expect(parseFrame("null")).toEqual({ ok: false, reason: "not a JSON object" });
    expect(parseFrame("[]")).toEqual({ ok: false, reason: "not a JSON object" });
    expect(parseFrame("{}")).toEqual({ ok: false, reason: "type: missing" });
    expect(parseFrame('{"type":"toString"}')).toEqual({ ok: false, reason: 'unknown type "toString"' });
    expect(parseFrame('{"type":"__proto__"}').ok).toBe(false);
  });

  it("never throw, whatever arrives", () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.anything()), (value) => {
        const guarded = guardFrame(value);
        if (guarded.ok) expect(typeof (value as { type: unknown }).type).toBe("string");
      }),
      { numRuns: 2000 },
    );
    // Random frames built from the samples, with fields swapped between them.
    const keys = [...new Set(SAMPLES.flatMap((f) => Object.keys(f)))];
    const values = SAMPLES.flatMap((f) => Object.values(f));
    fc.assert(
      fc.property(
        fc.constantFrom(...SAMPLES),
        fc.constantFrom(...keys),
        fc.constantFrom(...values),
        (frame, key, value) => {
          const bent = { ...frame, [key]: value };
          const guarded = guardFrame(bent);
          // Whatever zod accepts, the guard accepts (it checks less, never more).
          if (v2.ServerMessageV2.safeParse(bent).success) expect(guarded.ok).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
