/** Property tests of protocol/v2: every v2 message round-trips, every near miss is refused with the right code. */
import { describe, expect, it } from "bun:test";
import fc from "fast-check";
import {
  CLOSE,
  type ClientMessage,
  charCount,
  type Decoded,
  decodeClientMessage,
  decodeServerMessage,
  ERROR_CODES,
  type ErrorCode,
  encode,
  isValidRoom,
  isWellFormed,
  LIMITS,
  v2,
} from "../protocol";

const {
  ClientMessageV2,
  ServerMessageV2,
  decodeClientMessageV2,
  decodeServerMessageV2,
  encodeV2,
  LIMITS_V2,
  ERROR_CODES_V2,
} = v2;
type ClientMessageV2 = v2.ClientMessageV2;
type ServerMessageV2 = v2.ServerMessageV2;

// The test's own picture of a name character, independent of protocol/names.ts.
const NAME_CHAR = /^[\p{L}\p{N}_.-]$/u;
const INVISIBLE = /\p{Default_Ignorable_Code_Point}/u;

// ---------------------------------------------------------------------------------------------
// Arbitraries

/** One code point of any kind, lone surrogates included, weighted towards astral ones. */
const anyCodePoint = fc.oneof(
  fc.integer({ min: 0, max: 0x10ffff }).map((cp) => String.fromCodePoint(cp)),
  fc.integer({ min: 0x10000, max: 0x10ffff }).map((cp) => String.fromCodePoint(cp)),
  fc.constantFrom("a", " ", "é", "😀", "𝔸", "\n", '"', "\\", "\u0000", "~"),
);
const wellFormedCodePoint = anyCodePoint.filter((c) => !/^[\ud800-\udfff]$/.test(c));
const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((u) => String.fromCharCode(u));

const nameChar = fc.oneof(
  fc.constantFrom(..."abcxyzABCXYZ0189_-."),
  fc.constantFrom("é", "ß", "Ж", "漢", "ñ", "ع", "𝔸", "𐐀", "٣", "Ω"),
  fc
    .integer({ min: 0x80, max: 0x2ffff })
    .map((cp) => String.fromCodePoint(cp))
    .filter((c) => NAME_CHAR.test(c) && !INVISIBLE.test(c) && c.normalize("NFC") === c),
);
const nameOf = (min: number, max: number) =>
  fc.array(nameChar, { minLength: min, maxLength: max }).map((cs) => cs.join(""));

/** Nicknames in one script (so never mixing scripts), with digits and `_ - .`. */
const nickArb = fc
  .constantFrom("abcxyzABCXYZéßñ", "ЖжаяЁ", "ΩαβλσΣ", "漢字中", "한국어")
  .chain((letters) =>
    fc.array(fc.constantFrom(...letters, ..."0189_-."), { minLength: 1, maxLength: LIMITS.nickMax }),
  )
  .map((cs) => cs.join(""));

const v1RoomArb = nameOf(1, LIMITS.roomMax);
const directRoomArb = fc
  .stringMatching(new RegExp(`^[A-Za-z0-9_.-]{1,${LIMITS_V2.directRoomMax}}$`))
  .map((s) => `~${s}`);
const roomArb = fc.oneof({ arbitrary: v1RoomArb, weight: 3 }, directRoomArb);

const textArb = fc
  .oneof(
    { arbitrary: fc.string({ unit: wellFormedCodePoint, minLength: 1, maxLength: 200 }), weight: 4 },
    fc.string({ unit: wellFormedCodePoint, minLength: LIMITS.textMax - 5, maxLength: LIMITS.textMax }),
  )
  .filter((s) => s.trim().length > 0 && charCount(s) <= LIMITS.textMax);
const idArb = fc.string({ unit: wellFormedCodePoint, minLength: 1, maxLength: LIMITS.idMax });
const topicArb = fc.string({ unit: wellFormedCodePoint, maxLength: LIMITS_V2.topicMax });
const reasonArb = fc.string({ unit: wellFormedCodePoint, minLength: 1, maxLength: LIMITS_V2.reasonMax });
const seqArb = fc.maxSafeNat();
const positiveArb = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });
const isoArb = fc
  .date({ min: new Date(0), max: new Date("9999-12-31T23:59:59.999Z"), noInvalidDate: true })
  .map((d) => d.toISOString());

/** Emoji of every shape the grammar knows: plain, with FE0F, skin tones, flags, keycaps, tags, ZWJ. */
const EMOJI = [
  "😀",
  "👍",
  "❤",
  "❤️",
  "👍🏽",
  "🏻",
  "🇫🇷",
  "🇯🇵",
  "#️⃣",
  "1️⃣",
  "*⃣",
  "🏴󠁧󠁢󠁳󠁣󠁴󠁿",
  "🏳️‍🌈",
  "❤️‍🔥",
  "👩‍👩‍👧‍👦",
  "👩🏻‍❤️‍💋‍👩🏼",
  "🕵🏻‍♂️",
  "🧑🏻‍🤝‍🧑🏼",
  "👁️‍🗨️",
  "©",
  "™️",
  "🫠",
];
const shortcodeArb = fc
  .stringMatching(new RegExp(`^[a-z0-9_+-]{1,${LIMITS_V2.shortcodeNameMax}}$`))
  .map((s) => `:${s}:`);
const emojiArb = fc.oneof(
  fc.constantFrom(...EMOJI),
  shortcodeArb,
  fc
    .array(fc.constantFrom(...EMOJI), { minLength: 2, maxLength: 4 })
    .map((es) => es.join("\u200d"))
    .filter((e) => charCount(e) <= LIMITS_V2.emojiMax),
);

const clientArbs = {
  chat: fc.record(
    {
      type: fc.constant("chat"),
      room: roomArb,
      text: textArb,
      id: idArb,
      kind: fc.constant("action"),
      replyTo: positiveArb,
    },
    { requiredKeys: ["type", "room", "text"] },
  ),
  edit: fc.record(
    { type: fc.constant("edit"), room: roomArb, seq: positiveArb, text: textArb, id: idArb },
    { requiredKeys: ["type", "room", "seq", "text"] },
  ),
  delete: fc.record(
    { type: fc.constant("delete"), room: roomArb, seq: positiveArb, id: idArb },
    { requiredKeys: ["type", "room", "seq"] },
  ),
  react: fc.record(
    {
      type: fc.constant("react"),
      room: roomArb,
      seq: positiveArb,
      emoji: emojiArb,
      on: fc.boolean(),
      id: idArb,
    },
    { requiredKeys: ["type", "room", "seq", "emoji", "on"] },
  ),
  topic: fc.record(
    { type: fc.constant("topic"), room: roomArb, topic: topicArb, id: idArb },
    { requiredKeys: ["type", "room", "topic"] },
  ),
  join: fc.record(
    { type: fc.constant("join"), room: roomArb, id: idArb },
    { requiredKeys: ["type", "room"] },
  ),
  part: fc.record(
    { type: fc.constant("part"), room: roomArb, id: idArb },
    { requiredKeys: ["type", "room"] },
  ),
  dm: fc.record({ type: fc.constant("dm"), nick: nickArb, id: idArb }, { requiredKeys: ["type", "nick"] }),
  sync: fc.record(
    { type: fc.constant("sync"), room: roomArb, since: seqArb, sinceRev: seqArb, id: idArb },
    { requiredKeys: ["type", "room", "since", "sinceRev"] },
  ),
  history: fc.record(
    {
      type: fc.constant("history"),
      room: roomArb,
      before: seqArb,
      limit: fc.integer({ min: 1, max: LIMITS.historyMax }),
      id: idArb,
    },
    { requiredKeys: ["type", "room"] },
  ),
  who: fc.record({ type: fc.constant("who"), room: roomArb, id: idArb }, { requiredKeys: ["type", "room"] }),
  typing: fc.record(
    { type: fc.constant("typing"), room: roomArb, id: idArb },
    { requiredKeys: ["type", "room"] },
  ),
  read: fc.record(
    { type: fc.constant("read"), room: roomArb, seq: seqArb, id: idArb },
    { requiredKeys: ["type", "room", "seq"] },
  ),
  nick: fc.record(
    { type: fc.constant("nick"), nick: nickArb, id: idArb },
    { requiredKeys: ["type", "nick"] },
  ),
  kick: fc.record(
    { type: fc.constant("kick"), room: roomArb, nick: nickArb, reason: reasonArb, id: idArb },
    { requiredKeys: ["type", "room", "nick"] },
  ),
  ban: fc.record(
    {
      type: fc.constant("ban"),
      room: roomArb,
      nick: nickArb,
      seconds: fc.integer({ min: 1, max: LIMITS_V2.banSecondsMax }),
      reason: reasonArb,
      id: idArb,
    },
    { requiredKeys: ["type", "room", "nick"] },
  ),
} satisfies Record<v2.ClientMessageTypeV2, fc.Arbitrary<ClientMessageV2>>;

/** The fields every client message must carry, as PROTOCOL.md's v2 table lists them. */
const REQUIRED: Record<v2.ClientMessageTypeV2, string[]> = {
  chat: ["room", "text"],
  edit: ["room", "seq", "text"],
  delete: ["room", "seq"],
  react: ["room", "seq", "emoji", "on"],
  topic: ["room", "topic"],
  join: ["room"],
  part: ["room"],
  dm: ["nick"],
  sync: ["room", "since", "sinceRev"],
  history: ["room"],
  who: ["room"],
  typing: ["room"],
  read: ["room", "seq"],
  nick: ["nick"],
  kick: ["room", "nick"],
  ban: ["room", "nick"],
};

// Server side: names are opaque there (1-512 UTF-16 units); kept short so astral ones stay in bounds.
const nameArb = fc.oneof(nickArb, fc.string({ unit: anyCodePoint, minLength: 1, maxLength: 40 }));
const serverTextArb = fc.string({ unit: anyCodePoint, minLength: 1, maxLength: 30 });
const smallUsers = fc.array(nameArb, { maxLength: 5 });
const cappedArb = fc.integer({ min: 0, max: LIMITS_V2.unreadMax });

/** A record of `required` fields with any subset of `optional` ones. */
function withOptional<R, O>(
  required: { [K in keyof R]: fc.Arbitrary<R[K]> },
  optional: { [K in keyof O]: fc.Arbitrary<O[K]> },
): fc.Arbitrary<R & Partial<O>> {
  return fc
    .tuple(fc.record(required), fc.record(optional, { requiredKeys: [] }))
    .map(([r, o]) => ({ ...r, ...o }) as R & Partial<O>);
}

const roomStateRequired = {
  room: roomArb,
  topic: topicArb,
  users: smallUsers,
  lastSeq: seqArb,
  lastRev: seqArb,
  readSeq: seqArb,
  unread: cappedArb,
  mentions: cappedArb,
};
const roomStateOptional = { dm: fc.record({ nick: nameArb }), epoch: nameArb };
const roomStateArb = withOptional(roomStateRequired, roomStateOptional);

const mentionsArb = fc.array(nameArb, { minLength: 1, maxLength: 4 });
const reactionsArb = fc.array(
  fc.record({ emoji: emojiArb, nicks: fc.array(nameArb, { minLength: 1, maxLength: 4 }) }),
  { minLength: 1, maxLength: LIMITS_V2.reactionsPerPost },
);
const postOptional = {
  kind: fc.constant("action" as const),
  replyTo: positiveArb,
  mentions: mentionsArb,
  editedAt: isoArb,
  reactions: reactionsArb,
};
const postRequired = { seq: positiveArb, nick: nameArb, userId: nameArb, sentAt: isoArb };
const livePostArb = withOptional({ ...postRequired, text: serverTextArb }, postOptional);
const deletedPostArb = withOptional(
  { ...postRequired, text: fc.constant(""), deleted: fc.constant(true as const) },
  postOptional,
);
const foldedPostArb = fc.oneof(livePostArb, deletedPostArb);
const postsArb = fc.array(foldedPostArb, { maxLength: 4 });

const changeArbs = {
  edit: fc.record({
    type: fc.constant("edit"),
    room: roomArb,
    rev: positiveArb,
    seq: positiveArb,
    text: serverTextArb,
    editedAt: isoArb,
  }),
  delete: fc.record({
    type: fc.constant("delete"),
    room: roomArb,
    rev: positiveArb,
    seq: positiveArb,
    by: nameArb,
  }),
  reaction: fc.record({
    type: fc.constant("reaction"),
    room: roomArb,
    rev: positiveArb,
    seq: positiveArb,
    emoji: emojiArb,
    nick: nameArb,
    on: fc.boolean(),
  }),
  topic: fc.record({
    type: fc.constant("topic"),
    room: roomArb,
    rev: positiveArb,
    topic: topicArb,
    nick: nameArb,
  }),
};

const presenceEventArb = fc.oneof(
  fc.record({ event: fc.constant("join"), nick: nameArb }),
  fc.record({ event: fc.constant("leave"), nick: nameArb }),
  fc.record({ event: fc.constant("nick"), from: nameArb, nick: nameArb }),
);

const serverArbs = {
  welcome: fc.record(
    {
      type: fc.constant("welcome"),
      protocol: fc.constant(2),
      connectionId: nameArb,
      user: fc.record({ userId: nameArb, nick: nameArb }),
      identityToken: nameArb,
      rooms: fc.array(roomStateArb, { maxLength: 4 }),
    },
    { requiredKeys: ["type", "protocol", "connectionId", "user", "rooms"] },
  ),
  joined: withOptional({ type: fc.constant("joined" as const), ...roomStateRequired }, roomStateOptional),
  parted: fc.record({ type: fc.constant("parted"), room: roomArb }),
  chat: fc.record(
    {
      type: fc.constant("chat"),
      room: roomArb,
      seq: positiveArb,
      nick: nameArb,
      text: serverTextArb,
      sentAt: isoArb,
      userId: nameArb,
      kind: fc.constant("action"),
      replyTo: positiveArb,
      mentions: mentionsArb,
    },
    { requiredKeys: ["type", "room", "seq", "nick", "text", "sentAt", "userId"] },
  ),
  sync: fc.record({
    type: fc.constant("sync"),
    room: roomArb,
    posts: postsArb,
    changes: fc.array(fc.oneof(...Object.values(changeArbs)), { maxLength: 5 }),
    truncated: fc.boolean(),
  }),
  history: fc.record({
    type: fc.constant("history"),
    room: roomArb,
    messages: postsArb,
    hasMore: fc.boolean(),
  }),
  ...changeArbs,
  kicked: fc.record(
    { type: fc.constant("kicked"), room: roomArb, by: nameArb, reason: reasonArb, until: isoArb },
    { requiredKeys: ["type", "room", "by"] },
  ),
  read: fc.record({ type: fc.constant("read"), room: roomArb, seq: seqArb }),
  presence: fc.record({
    type: fc.constant("presence"),
    room: roomArb,
    events: fc.array(presenceEventArb, { minLength: 1, maxLength: 5 }),
  }),
  users: fc.record({ type: fc.constant("users"), room: roomArb, users: smallUsers }),
  ack: fc.record({ type: fc.constant("ack"), id: idArb, seq: positiveArb }),
  typing: fc.record({ type: fc.constant("typing"), room: roomArb, nick: nameArb }),
  error: fc.record(
    {
      type: fc.constant("error"),
      code: fc.constantFrom(...ERROR_CODES_V2),
      message: fc.string({ unit: anyCodePoint, maxLength: 100 }),
      id: idArb,
    },
    { requiredKeys: ["type", "code", "message"] },
  ),
} satisfies Record<v2.ServerMessageTypeV2, fc.Arbitrary<ServerMessageV2>>;

const anyClientMessage: fc.Arbitrary<ClientMessageV2> = fc.oneof(...Object.values(clientArbs));
const anyServerMessage: fc.Arbitrary<ServerMessageV2> = fc.oneof(...Object.values(serverArbs));

/** Every field name of any v2 client message: an extra key must be none of them. */
const CLIENT_KEYS = new Set([
  "type",
  "room",
  "text",
  "id",
  "kind",
  "replyTo",
  "seq",
  "emoji",
  "on",
  "topic",
  "nick",
  "since",
  "sinceRev",
  "before",
  "limit",
  "reason",
  "seconds",
]);

// ---------------------------------------------------------------------------------------------
// Helpers

function errorOf<E>(result: { ok: true; value: unknown } | { ok: false; error: E }): E {
  if (result.ok) throw new Error(`expected a refusal, got ${JSON.stringify(result.value).slice(0, 200)}`);
  return result.error;
}

function codeOf<T>(result: Decoded<T>): ErrorCode {
  return errorOf(result).code;
}

const frame = (value: unknown) => JSON.stringify(value);
const client = (value: unknown) => decodeClientMessageV2(frame(value));
const server = (value: unknown) => decodeServerMessageV2(frame(value));

/** A key spliced into a frame as text: `{...m, __proto__: v}` in JS would set the prototype instead. */
function withKey(m: object, key: string, value: unknown): string {
  return `${JSON.stringify(m).slice(0, -1)},${JSON.stringify(key)}:${JSON.stringify(value) ?? "null"}}`;
}

/** A JSON value of another type than `value`'s. */
function wrongTypeFor(value: unknown): fc.Arbitrary<unknown> {
  const candidates: unknown[] = [5, -1.5, "5", "true", true, false, null, [], ["x"], {}, { a: 1 }];
  return fc.constantFrom(
    ...candidates.filter((c) => typeof c !== typeof value || Array.isArray(c) !== Array.isArray(value)),
  );
}

const badSeq = fc.oneof(
  fc.integer({ min: -Number.MAX_SAFE_INTEGER, max: -1 }),
  fc.double({ min: -1e9, max: 1e9, noNaN: true }).filter((x) => !Number.isInteger(x)),
  fc.constantFrom(-1, 0.5, 1.000001, 2 ** 53, 1e300),
);

/** n whole characters, none a surrogate half nor white space. */
const exactly = (n: number) =>
  fc
    .array(fc.oneof(fc.constantFrom("a", "é", "😀", "𝔸", "漢"), fc.integer({ min: 0x1f600, max: 0x1f64f })), {
      minLength: n,
      maxLength: n,
    })
    .map((cs) => cs.map((c) => (typeof c === "number" ? String.fromCodePoint(c) : c)).join(""));

// ---------------------------------------------------------------------------------------------

describe("v2 encode and decode", () => {
  for (const [type, arb] of Object.entries(clientArbs)) {
    it(`round-trips every valid client \`${type}\` message`, () => {
      fc.assert(
        fc.property(arb as fc.Arbitrary<ClientMessageV2>, (m) => {
          expect(decodeClientMessageV2(encodeV2(m))).toStrictEqual({ ok: true, value: m });
        }),
        { numRuns: 40 },
      );
    });
  }

  for (const [type, arb] of Object.entries(serverArbs)) {
    it(`round-trips every valid server \`${type}\` message`, () => {
      fc.assert(
        fc.property(arb as fc.Arbitrary<ServerMessageV2>, (m) => {
          expect(decodeServerMessageV2(encodeV2(m))).toStrictEqual({ ok: true, value: m });
        }),
        { numRuns: 30 },
      );
    });
  }

  it("encodes as v1 does: one JSON object", () => {
    fc.assert(
      fc.property(fc.oneof(anyClientMessage, anyServerMessage), (m) => {
        expect(encodeV2(m)).toBe(JSON.stringify(m));
        expect(encodeV2(m)).toBe(encode(m as ClientMessage));
      }),
      { numRuns: 50 },
    );
  });

  it("has one schema per type, and the tests cover every one of them", () => {
    const clientTypes: string[] = ClientMessageV2.options.map((o) => o.shape.type.value);
    const serverTypes: string[] = ServerMessageV2.options.map((o) => o.shape.type.value);
    expect(new Set(clientTypes).size).toBe(clientTypes.length);
    expect(new Set(serverTypes).size).toBe(serverTypes.length);
    expect([...clientTypes].sort()).toStrictEqual(Object.keys(clientArbs).sort());
    expect([...serverTypes].sort()).toStrictEqual(Object.keys(serverArbs).sort());
    expect([...clientTypes].sort()).toStrictEqual(Object.keys(REQUIRED).sort());
  });

  it("is discriminated: a message is valid as its own type only", () => {
    const check = (
      options: readonly { safeParse(v: unknown): { success: boolean } }[],
      m: { type: string },
    ) => {
      const valid = options.filter((o) => o.safeParse(m).success);
      expect(valid.length).toBe(1);
    };
    fc.assert(
      fc.property(anyClientMessage, (m) => {
        check(ClientMessageV2.options, m);
      }),
      { numRuns: 100 },
    );
    fc.assert(
      fc.property(anyServerMessage, (m) => {
        check(ServerMessageV2.options, m);
      }),
      { numRuns: 100 },
    );
  });

  it("keeps the two directions apart, but for `read`, which has one shape both ways", () => {
    fc.assert(
      fc.property(anyServerMessage, (m) => {
        expect(decodeClientMessageV2(encodeV2(m)).ok).toBe(m.type === "read");
      }),
      { numRuns: 100 },
    );
    fc.assert(
      fc.property(anyClientMessage, (m) => {
        const asServer = decodeServerMessageV2(encodeV2(m)).ok;
        expect(asServer).toBe(m.type === "read" && m.id === undefined);
      }),
      { numRuns: 100 },
    );
  });
});

describe("decodeClientMessageV2", () => {
  it("answers junk with bad_json or bad_message, binary with bad_frame, and never throws", () => {
    fc.assert(
      fc.property(fc.string({ unit: anyCodePoint, maxLength: 60 }), (junk) => {
        let isJson = true;
        try {
          JSON.parse(junk);
        } catch {
          isJson = false;
        }
        expect(codeOf(decodeClientMessageV2(junk))).toBe(isJson ? "bad_message" : "bad_json");
        expect(codeOf(decodeServerMessageV2(junk))).toBe(isJson ? "bad_message" : "bad_json");
      }),
      { numRuns: 200 },
    );
    fc.assert(
      fc.property(anyClientMessage, (m) => {
        const bytes = new TextEncoder().encode(encodeV2(m));
        expect(codeOf(decodeClientMessageV2(bytes))).toBe("bad_frame");
        expect(codeOf(decodeClientMessageV2(bytes.buffer as ArrayBuffer))).toBe("bad_frame");
        expect(codeOf(decodeServerMessageV2(bytes))).toBe("bad_frame");
      }),
      { numRuns: 30 },
    );
    for (const value of [[], 1, null, "who", { type: 1 }, {}, { room: "lobby" }]) {
      expect(codeOf(client(value))).toBe("bad_message");
    }
  });

  it("never throws on a broken copy of a valid frame or on deep nesting", () => {
    fc.assert(
      fc.property(anyClientMessage, fc.nat(), fc.nat({ max: 10 }), (m, at, cut) => {
        const text = encodeV2(m);
        const i = at % text.length;
        const result = decodeClientMessageV2(text.slice(0, i) + text.slice(i + 1 + cut));
        if (!result.ok) expect(ERROR_CODES).toContain(result.error.code);
      }),
      { numRuns: 100 },
    );
    const depth = 100_000;
    for (const f of [
      "[".repeat(depth) + "]".repeat(depth),
      `{"type":"chat","room":"a","text":${"[".repeat(depth)}${"]".repeat(depth)}}`,
      `{"type":"sync","room":"a","since":${'{"a":'.repeat(depth)}1${"}".repeat(depth)}}`,
    ]) {
      expect(["bad_json", "bad_message"]).toContain(codeOf(decodeClientMessageV2(f)));
      expect(["bad_json", "bad_message"]).toContain(codeOf(decodeServerMessageV2(f)));
    }
  });

  it("refuses an unknown type, and a server-only one, with bad_message", () => {
    const known = new Set(Object.keys(clientArbs));
    fc.assert(
      fc.property(
        fc.string({ unit: anyCodePoint, maxLength: 12 }).filter((t) => !known.has(t)),
        roomArb,
        (type, room) => {
          expect(codeOf(client({ type, room }))).toBe("bad_message");
        },
      ),
      { numRuns: 100 },
    );
    for (const type of ["CHAT", "Edit", "joined", "parted", "reaction", "kicked", "welcome", "__proto__"]) {
      expect(codeOf(client({ type, room: "lobby", seq: 1 }))).toBe("bad_message");
    }
  });

  it("refuses a missing field with bad_message", () => {
    fc.assert(
      fc.property(anyClientMessage, fc.nat(), (m, which) => {
        const required = REQUIRED[m.type];
        const field = required[which % required.length] as string;
        const { [field]: _gone, ...rest } = m as Record<string, unknown>;
        expect(codeOf(client(rest))).toBe("bad_message");
      }),
      { numRuns: 200 },
    );
  });

  it("refuses extra keys, __proto__ and constructor included, with bad_message", () => {
    const extraKey = fc
      .oneof(
        fc.constantFrom("__proto__", "constructor", "prototype", "Type", "Room", "userId", "rev", "until"),
        fc.string({ minLength: 1, maxLength: 10 }),
      )
      .filter((k) => !CLIENT_KEYS.has(k));
    fc.assert(
      fc.property(anyClientMessage, extraKey, fc.jsonValue({ maxDepth: 2 }), (m, key, value) => {
        const text = withKey(m, key, value);
        expect(Object.keys(JSON.parse(text))).toContain(key);
        expect(codeOf(decodeClientMessageV2(text))).toBe("bad_message");
      }),
      { numRuns: 200 },
    );
    // Fields of other v2 requests are extra too.
    expect(codeOf(client({ type: "join", room: "lobby", since: 3 }))).toBe("bad_message");
    expect(codeOf(client({ type: "who", room: "lobby", nick: "ann" }))).toBe("bad_message");
    expect(codeOf(client({ type: "delete", room: "lobby", seq: 1, text: "x" }))).toBe("bad_message");
    expect(codeOf(client({ type: "chat", room: "lobby", text: "x", kind: "action", seq: 2 }))).toBe(
      "bad_message",
    );
  });

  it("refuses a field of the wrong type with bad_message", () => {
    const broken = anyClientMessage.chain((m) => {
      const fields = Object.keys(m).filter((k) => k !== "type");
      return fc
        .constantFrom(...fields)
        .chain((field) =>
          wrongTypeFor((m as Record<string, unknown>)[field]).map((bad) => ({ ...m, [field]: bad })),
        );
    });
    fc.assert(
      fc.property(broken, (m) => {
        expect(codeOf(client(m))).toBe("bad_message");
      }),
      { numRuns: 300 },
    );
    for (const kind of ["Action", "me", "", "emote"]) {
      expect(codeOf(client({ type: "chat", room: "a", text: "hi", kind }))).toBe("bad_message");
    }
  });

  it("refuses numbers out of range with bad_message", () => {
    const postSeqFields: Array<[string, (n: unknown) => object]> = [
      ["edit seq", (seq) => ({ type: "edit", room: "a", seq, text: "x" })],
      ["delete seq", (seq) => ({ type: "delete", room: "a", seq })],
      ["react seq", (seq) => ({ type: "react", room: "a", seq, emoji: "👍", on: true })],
      ["replyTo", (replyTo) => ({ type: "chat", room: "a", text: "x", replyTo })],
    ];
    const seqFields: Array<[string, (n: unknown) => object]> = [
      ["since", (since) => ({ type: "sync", room: "a", since, sinceRev: 0 })],
      ["sinceRev", (sinceRev) => ({ type: "sync", room: "a", since: 0, sinceRev })],
      ["before", (before) => ({ type: "history", room: "a", before })],
      ["read seq", (seq) => ({ type: "read", room: "a", seq })],
    ];
    fc.assert(
      fc.property(badSeq, (n) => {
        for (const [, make] of [...postSeqFields, ...seqFields])
          expect(codeOf(client(make(n)))).toBe("bad_message");
      }),
      { numRuns: 100 },
    );
    // A post's seq counts from 1; since, sinceRev, before and a read marker may be 0.
    for (const [, make] of postSeqFields) {
      expect(codeOf(client(make(0)))).toBe("bad_message");
      expect(client(make(1)).ok).toBe(true);
    }
    for (const [, make] of seqFields) expect(client(make(0)).ok).toBe(true);

    for (const limit of [0, LIMITS.historyMax + 1, 1.5, -1]) {
      expect(codeOf(client({ type: "history", room: "a", limit }))).toBe("bad_message");
    }
    for (const limit of [1, LIMITS.historyMax])
      expect(client({ type: "history", room: "a", limit }).ok).toBe(true);

    const ban = (seconds: number) => client({ type: "ban", room: "a", nick: "bob", seconds });
    for (const seconds of [0, -1, 1.5, LIMITS_V2.banSecondsMax + 1, 1e300]) {
      expect(codeOf(ban(seconds))).toBe("bad_message");
    }
    for (const seconds of [1, 3600, LIMITS_V2.banSecondsMax]) expect(ban(seconds).ok).toBe(true);
  });

  it("refuses a lone surrogate in any string of any client message with bad_message", () => {
    const broken = fc
      .tuple(anyClientMessage, fc.nat(), loneSurrogate, fc.nat())
      .map(([m, which, bad, at]) => {
        const fields = Object.keys(m).filter((k) => typeof (m as Record<string, unknown>)[k] === "string");
        const field = fields[which % fields.length] as string;
        const value = [...((m as Record<string, unknown>)[field] as string)];
        value.splice(at % (value.length + 1), 0, bad);
        return { ...m, [field]: value.join("") };
      });
    fc.assert(
      fc.property(broken, (m) => {
        expect(codeOf(decodeClientMessageV2(JSON.stringify(m)))).toBe("bad_message");
      }),
      { numRuns: 300 },
    );
    for (const value of [
      { type: "topic", room: "a", topic: "t\ud800" },
      { type: "topic", room: "a", topic: `${"x".repeat(LIMITS_V2.topicMax + 1)}\udfff` },
      { type: "react", room: "a", seq: 1, emoji: "\ud83d", on: true },
      { type: "kick", room: "a", nick: "bob", reason: "\ude00" },
      { type: "join", room: "~a\ud800" },
      { type: "dm", nick: "bob\udbff" },
      { type: "part", room: "a", "\ud800": 1 },
    ]) {
      expect(codeOf(client(value))).toBe("bad_message");
    }
  });

  it("has schemas that refuse a lone surrogate too, for code that parses without the decoder", () => {
    for (const [schema, good] of [
      [v2.RoomName, "~ab"],
      [v2.Topic, "news"],
      [v2.Reason, "spam"],
      [v2.Emoji, "👍"],
    ] as const) {
      expect(schema.safeParse(good).success).toBe(true);
      const result = schema.safeParse(`${good}\ud800`);
      expect(result.success).toBe(false);
      expect(result.error?.issues[0]?.message).toContain("well-formed");
    }
  });

  describe("text, topic and reason", () => {
    it("refuses a chat or edit text over 4000 characters with too_large, and an empty one with bad_message", () => {
      fc.assert(
        fc.property(exactly(LIMITS.textMax + 1), (text) => {
          expect(codeOf(client({ type: "chat", room: "a", text }))).toBe("too_large");
          expect(codeOf(client({ type: "edit", room: "a", seq: 1, text }))).toBe("too_large");
        }),
        { numRuns: 10 },
      );
      for (const text of ["", " ", "\n\t", "\u3000"]) {
        expect(codeOf(client({ type: "chat", room: "a", text }))).toBe("bad_message");
        expect(codeOf(client({ type: "edit", room: "a", seq: 1, text }))).toBe("bad_message");
      }
      expect(client({ type: "edit", room: "a", seq: 1, text: "😀".repeat(LIMITS.textMax) }).ok).toBe(true);
    });

    it("accepts a topic of 0 to 200 characters, astral ones counting once, and refuses 201 with too_large", () => {
      for (const topic of ["", " ", "😀".repeat(LIMITS_V2.topicMax), "x".repeat(LIMITS_V2.topicMax)]) {
        expect(client({ type: "topic", room: "a", topic }).ok).toBe(true);
      }
      fc.assert(
        fc.property(
          exactly(LIMITS_V2.topicMax + 1),
          fc.integer({ min: LIMITS_V2.topicMax + 1, max: 5000 }),
          (topic, n) => {
            expect(codeOf(client({ type: "topic", room: "a", topic }))).toBe("too_large");
            expect(codeOf(client({ type: "topic", room: "a", topic: "t".repeat(n), id: "q" }))).toBe(
              "too_large",
            );
          },
        ),
        { numRuns: 20 },
      );
    });

    it("accepts a reason of 1 to 200 characters, refuses 201 with too_large and an empty one with bad_message", () => {
      const kick = (reason: string) => client({ type: "kick", room: "a", nick: "bob", reason });
      const ban = (reason: string) => client({ type: "ban", room: "a", nick: "bob", seconds: 60, reason });
      for (const reason of ["x", "😀".repeat(LIMITS_V2.reasonMax)]) {
        expect(kick(reason).ok).toBe(true);
        expect(ban(reason).ok).toBe(true);
      }
      fc.assert(
        fc.property(exactly(LIMITS_V2.reasonMax + 1), (reason) => {
          expect(codeOf(kick(reason))).toBe("too_large");
          expect(codeOf(ban(reason))).toBe("too_large");
        }),
        { numRuns: 10 },
      );
      expect(codeOf(kick(""))).toBe("bad_message");
      expect(codeOf(ban(""))).toBe("bad_message");
    });

    it("refuses an id outside 1-64 characters with bad_message, on every request", () => {
      fc.assert(
        fc.property(
          anyClientMessage,
          fc.constantFrom("", "x".repeat(LIMITS.idMax + 1), "😀".repeat(65)),
          (m, id) => {
            expect(codeOf(client({ ...m, id }))).toBe("bad_message");
          },
        ),
        { numRuns: 100 },
      );
    });
  });

  describe("emoji", () => {
    const react = (emoji: unknown) => client({ type: "react", room: "a", seq: 1, emoji, on: true });

    it("accepts one emoji of any shape, or a :shortcode:, up to 32 characters", () => {
      for (const emoji of EMOJI) expect({ emoji, ok: react(emoji).ok }).toEqual({ emoji, ok: true });
      for (const emoji of [":+1:", ":-1:", ":thumbs_up:", `:${"a".repeat(LIMITS_V2.shortcodeNameMax)}:`]) {
        expect({ emoji, ok: react(emoji).ok }).toEqual({ emoji, ok: true });
      }
      // 32 characters exactly: ❤️ and 15 more joined by ZWJ.
      const longest = `❤️${"\u200d😀".repeat(15)}`;
      expect(charCount(longest)).toBe(LIMITS_V2.emojiMax);
      expect(react(longest).ok).toBe(true);
    });

    it("accepts every single-character emoji Unicode recommends (RGI_Emoji of this engine)", () => {
      // The v flag (ES2024) knows RGI_Emoji; a flag typed as a string keeps tsc's ES2023 target quiet.
      const flags: string = "v";
      const rgi = new RegExp("^\\p{RGI_Emoji}$", flags);
      const missed: string[] = [];
      for (let cp = 0; cp <= 0x3ffff; cp++) {
        if (cp >= 0xd800 && cp <= 0xdfff) continue;
        for (const e of [String.fromCodePoint(cp), `${String.fromCodePoint(cp)}\ufe0f`]) {
          if (rgi.test(e) && !v2.isReactionEmoji(e)) missed.push(e);
        }
      }
      expect(missed).toEqual([]);
      for (const emoji of EMOJI.filter((e) => rgi.test(e))) expect(v2.isReactionEmoji(emoji)).toBe(true);
    });

    it("refuses an emoji of 33 characters and more with bad_message", () => {
      const tooLong = `😀${"\u200d😀".repeat(16)}`;
      expect(charCount(tooLong)).toBe(LIMITS_V2.emojiMax + 1);
      expect(codeOf(react(tooLong))).toBe("bad_message");
      expect(codeOf(react(`:${"a".repeat(LIMITS_V2.shortcodeNameMax + 1)}:`))).toBe("bad_message");
      expect(codeOf(react("👍".repeat(500)))).toBe("bad_message");
    });

    it("refuses what is not one emoji nor a shortcode with bad_message", () => {
      for (const emoji of [
        "",
        "a",
        "1",
        "#",
        "ab",
        "😀😀",
        "😀a",
        " 😀",
        "😀 ",
        "\u200d",
        "😀\u200d",
        "\u200d😀",
        "\ufe0f",
        "🇫",
        "🇫🇷🇫",
        ":a",
        "a:",
        "::",
        ":A:",
        ":a b:",
        ":é:",
        ":😀:",
        "<b>",
      ]) {
        expect({ emoji, code: codeOf(react(emoji)) }).toEqual({ emoji, code: "bad_message" });
      }
      fc.assert(
        fc.property(fc.stringMatching(/^[\p{L}\p{N} ]{1,10}$/u), (s) => {
          expect(codeOf(react(s))).toBe("bad_message");
        }),
        { numRuns: 100 },
      );
    });
  });

  describe("rooms and nicknames", () => {
    const roomRequests = (room: string) => [
      { type: "chat", room, text: "hi" },
      { type: "join", room },
      { type: "part", room },
      { type: "sync", room, since: 0, sinceRev: 0 },
      { type: "read", room, seq: 0 },
      { type: "kick", room, nick: "bob" },
    ];

    it("accepts v1 room names and direct room names in every room field", () => {
      fc.assert(
        fc.property(roomArb, (room) => {
          for (const m of roomRequests(room)) expect(client(m).ok).toBe(true);
        }),
        { numRuns: 100 },
      );
      for (const room of [
        "~a",
        `~${"a".repeat(LIMITS_V2.directRoomMax)}`,
        "~u1.u2",
        "~-_.",
        "lobby",
        "e\u0301",
      ]) {
        expect(client({ type: "join", room }).ok).toBe(true);
      }
    });

    it("refuses a broken room name with room_invalid", () => {
      const bad = fc.oneof(
        fc.constantFrom(
          "",
          " ",
          "a b",
          "~",
          "~~",
          "~~a",
          "a~b",
          "lobby~",
          "~a b",
          "~é",
          "~漢",
          "~a/b",
          "~a:b",
          " ~a",
          `~${"a".repeat(LIMITS_V2.directRoomMax + 1)}`,
          "r".repeat(LIMITS.roomMax + 1),
          "r".repeat(300),
        ),
        fc
          .stringMatching(/^~[A-Za-z0-9_.-]{0,10}[^A-Za-z0-9_.-][A-Za-z0-9_.-]{0,10}$/)
          .filter((room) => isWellFormed(room)),
      );
      fc.assert(
        fc.property(bad, (room) => {
          for (const m of roomRequests(room)) expect(codeOf(client(m))).toBe("room_invalid");
        }),
        { numRuns: 100 },
      );
    });

    it("refuses a broken nickname in nick, dm, kick and ban with nick_invalid", () => {
      for (const nick of ["", " ", "a b", "\u0430nn", "b".repeat(LIMITS.nickMax + 1), "~bob", "@bob"]) {
        for (const m of [
          { type: "nick", nick },
          { type: "dm", nick },
          { type: "kick", room: "a", nick },
          { type: "ban", room: "a", nick, seconds: 5 },
        ]) {
          expect({ m, code: codeOf(client(m)) }).toEqual({ m, code: "nick_invalid" });
        }
      }
    });
  });

  describe("error replies", () => {
    it("echo the failing frame's id, whatever the v2 type", () => {
      const failing = fc.constantFrom(
        { type: "edit", room: "a", seq: 0, text: "x" },
        { type: "react", room: "a", seq: 1, emoji: "x", on: true },
        { type: "topic", room: "a", topic: "t".repeat(LIMITS_V2.topicMax + 1) },
        { type: "sync", room: "a", since: 0 },
        { type: "ban", room: "a", nick: "bob", seconds: 0 },
        { type: "part", room: "~" },
        { type: "dm", nick: "no spaces" },
        { type: "who" },
        { type: "bogus" },
        { type: 42 },
      );
      fc.assert(
        fc.property(failing, idArb, (value, id) => {
          expect(errorOf(client({ ...value, id })).id).toBe(id);
        }),
        { numRuns: 100 },
      );
    });

    it("carry no id when the frame's id is not a valid one", () => {
      for (const id of ["", "x".repeat(LIMITS.idMax + 1), 5, null, ["a"], "a\ud800"]) {
        expect(errorOf(client({ type: "who", room: "~", id }))).not.toHaveProperty("id");
      }
    });
  });
});

describe("v1 frames under v2", () => {
  const v1ChatArb = fc.record(
    { type: fc.constant("chat"), text: textArb, id: idArb },
    { requiredKeys: ["type", "text"] },
  );
  const v1JoinArb = fc.record({ type: fc.constant("join"), room: v1RoomArb, since: seqArb });
  const v1HistoryArb = fc.record(
    { type: fc.constant("history"), before: seqArb, limit: fc.integer({ min: 1, max: LIMITS.historyMax }) },
    { requiredKeys: ["type"] },
  );
  const v1Bare = fc.constantFrom({ type: "who" }, { type: "typing" });

  it("refuses v1 client frames that v2 reshaped (no room, join with since) with bad_message", () => {
    fc.assert(
      fc.property(fc.oneof(v1ChatArb, v1JoinArb, v1HistoryArb, v1Bare), (m) => {
        expect(decodeClientMessage(frame(m)).ok).toBe(true);
        expect(codeOf(client(m))).toBe("bad_message");
      }),
      { numRuns: 200 },
    );
  });

  it("accepts v1's nick frame, the one client message both versions share", () => {
    fc.assert(
      fc.property(nickArb, (nick) => {
        expect(decodeClientMessage(frame({ type: "nick", nick })).ok).toBe(true);
        expect(client({ type: "nick", nick })).toStrictEqual({ ok: true, value: { type: "nick", nick } });
      }),
      { numRuns: 50 },
    );
  });

  it("refuses v1 server frames that v2 reshaped: welcome, chat without userId, history of v1 chats", () => {
    const v1Chat = fc.record({
      type: fc.constant("chat"),
      room: v1RoomArb,
      seq: positiveArb,
      nick: nickArb,
      text: serverTextArb,
      sentAt: isoArb,
    });
    const v1Welcome = fc.record({
      type: fc.constant("welcome"),
      protocol: fc.constant(1),
      connectionId: nameArb,
      room: v1RoomArb,
      nick: nickArb,
      users: smallUsers,
      history: fc.array(v1Chat, { maxLength: 3 }),
      historyTruncated: fc.boolean(),
      lastSeq: seqArb,
      resumeToken: nameArb,
    });
    const v1History = fc.record({
      type: fc.constant("history"),
      room: v1RoomArb,
      messages: fc.array(v1Chat, { minLength: 1, maxLength: 3 }),
      hasMore: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.oneof(v1Chat, v1Welcome, v1History), (m) => {
        expect(decodeServerMessage(frame(m)).ok).toBe(true);
        expect(codeOf(server(m))).toBe("bad_message");
      }),
      { numRuns: 100 },
    );
  });

  it("shows a v1 client no v2-only message: v1's decoder takes only what both versions share", () => {
    const shared = new Set(["presence", "users", "ack", "typing"]);
    fc.assert(
      fc.property(anyServerMessage, (m) => {
        const both =
          shared.has(m.type) ||
          (m.type === "error" && m.code !== "not_found") ||
          (m.type === "history" && m.messages.length === 0);
        expect(decodeServerMessage(encodeV2(m)).ok).toBe(both);
      }),
      { numRuns: 200 },
    );
  });
});

describe("decodeServerMessageV2", () => {
  const post = { seq: 1, nick: "ann", userId: "u1", text: "hi", sentAt: "2025-01-01T00:00:00.000Z" };
  const state = {
    room: "lobby",
    topic: "",
    users: ["ann"],
    lastSeq: 3,
    lastRev: 0,
    readSeq: 3,
    unread: 0,
    mentions: 0,
  };
  const history = (messages: unknown[]) =>
    server({ type: "history", room: "lobby", messages, hasMore: false });

  it("refuses an extra key at the top or inside (user, dm, room state, post, reaction, change)", () => {
    fc.assert(
      fc.property(anyServerMessage, fc.constantFrom("__proto__", "constructor", "extra"), (m, key) => {
        expect(codeOf(decodeServerMessageV2(withKey(m, key, {})))).toBe("bad_message");
      }),
      { numRuns: 100 },
    );
    const welcome = {
      type: "welcome",
      protocol: 2,
      connectionId: "c",
      user: { userId: "u", nick: "n" },
      rooms: [],
    };
    expect(server(welcome).ok).toBe(true);
    expect(codeOf(server({ ...welcome, user: { userId: "u", nick: "n", mod: true } }))).toBe("bad_message");
    expect(codeOf(server({ ...welcome, rooms: [{ ...state, extra: 1 }] }))).toBe("bad_message");
    expect(codeOf(server({ type: "joined", ...state, dm: { nick: "bob", userId: "u" } }))).toBe(
      "bad_message",
    );
    expect(codeOf(history([{ ...post, extra: 1 }]))).toBe("bad_message");
    expect(codeOf(history([{ ...post, reactions: [{ emoji: "👍", nicks: ["a"], n: 1 }] }]))).toBe(
      "bad_message",
    );
    const change = { type: "delete", room: "lobby", rev: 1, seq: 1, by: "ann" };
    const sync = { type: "sync", room: "lobby", posts: [], changes: [change], truncated: false };
    expect(server(sync).ok).toBe(true);
    expect(codeOf(server({ ...sync, changes: [{ ...change, extra: 1 }] }))).toBe("bad_message");
    expect(codeOf(server({ ...sync, changes: [{ type: "chat", ...post, room: "lobby" }] }))).toBe(
      "bad_message",
    );
  });

  it("refuses a missing field with bad_message", () => {
    fc.assert(
      fc.property(anyServerMessage, fc.nat(), (m, which) => {
        const keys = Object.keys(m).filter((k) => k !== "type");
        const schema = ServerMessageV2.options.find((o) => o.shape.type.value === m.type);
        if (!schema) throw new Error(`no schema for ${m.type}`);
        const shape = schema.shape as Record<string, { isOptional(): boolean } | undefined>;
        const required = keys.filter((k) => shape[k]?.isOptional() === false);
        if (required.length === 0) return;
        const field = required[which % required.length] as string;
        const { [field]: _gone, ...rest } = m as Record<string, unknown>;
        expect(codeOf(server(rest))).toBe("bad_message");
      }),
      { numRuns: 200 },
    );
  });

  it("keeps a folded post's text empty exactly when it is deleted", () => {
    expect(history([post]).ok).toBe(true);
    expect(history([{ ...post, text: "", deleted: true }]).ok).toBe(true);
    expect(codeOf(history([{ ...post, deleted: true }]))).toBe("bad_message");
    expect(codeOf(history([{ ...post, text: "" }]))).toBe("bad_message");
    expect(codeOf(history([{ ...post, text: "", deleted: false }]))).toBe("bad_message");
  });

  it("refuses out-of-range counts and lists", () => {
    for (const bad of [
      { unread: LIMITS_V2.unreadMax + 1 },
      { mentions: LIMITS_V2.unreadMax + 1 },
      { unread: -1 },
      { lastSeq: -1 },
      { lastRev: 1.5 },
      { readSeq: "3" },
      { dm: {} },
    ]) {
      expect(codeOf(server({ type: "joined", ...state, ...bad }))).toBe("bad_message");
    }
    // As v1's decoder does: a room name that breaks its bounds is room_invalid, a long text too_large.
    const longTopic = "t".repeat(LIMITS_V2.topicMax * 2 + 1);
    expect(codeOf(server({ type: "joined", ...state, topic: longTopic }))).toBe("too_large");
    expect(codeOf(server({ type: "joined", ...state, room: "" }))).toBe("room_invalid");
    expect(
      server({ type: "joined", ...state, unread: LIMITS_V2.unreadMax, mentions: LIMITS_V2.unreadMax }).ok,
    ).toBe(true);
    const reactions = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ emoji: `:e${i}:`, nicks: ["ann"] }));
    expect(history([{ ...post, reactions: reactions(LIMITS_V2.reactionsPerPost) }]).ok).toBe(true);
    expect(codeOf(history([{ ...post, reactions: reactions(LIMITS_V2.reactionsPerPost + 1) }]))).toBe(
      "bad_message",
    );
    expect(codeOf(history([{ ...post, reactions: [] }]))).toBe("bad_message");
    expect(codeOf(history([{ ...post, reactions: [{ emoji: "👍", nicks: [] }] }]))).toBe("bad_message");
    expect(codeOf(history([{ ...post, mentions: [] }]))).toBe("bad_message");
    expect(codeOf(history([{ ...post, seq: 0 }]))).toBe("bad_message");
    expect(codeOf(history([{ ...post, deleted: true, text: "", sentAt: "yesterday" }]))).toBe("bad_message");
    const posts = (n: number) => Array.from({ length: n }, (_, i) => ({ ...post, seq: i + 1 }));
    expect(history(posts(LIMITS_V2.syncMax)).ok).toBe(true);
    expect(codeOf(history(posts(LIMITS_V2.syncMax + 1)))).toBe("bad_message");
    const sync = (n: number) =>
      server({
        type: "sync",
        room: "a",
        posts: [],
        changes: Array.from({ length: n }, (_, i) => ({
          type: "topic",
          room: "a",
          rev: i + 1,
          topic: "",
          nick: "a",
        })),
        truncated: true,
      });
    expect(sync(LIMITS_V2.syncMax).ok).toBe(true);
    expect(codeOf(sync(LIMITS_V2.syncMax + 1))).toBe("bad_message");
    for (const rev of [0, -1, 1.5]) {
      expect(codeOf(server({ type: "edit", room: "a", rev, seq: 1, text: "x", editedAt: post.sentAt }))).toBe(
        "bad_message",
      );
    }
  });

  it("takes protocol 2 only, the error code not_found, and an ISO time as a ban's end", () => {
    const welcome = {
      type: "welcome",
      protocol: 2,
      connectionId: "c",
      user: { userId: "u", nick: "n" },
      rooms: [],
    };
    expect(codeOf(server({ ...welcome, protocol: 1 }))).toBe("bad_message");
    expect(server({ type: "error", code: "not_found", message: "no such post" }).ok).toBe(true);
    expect(decodeServerMessage(frame({ type: "error", code: "not_found", message: "x" })).ok).toBe(false);
    expect(codeOf(server({ type: "error", code: "gone", message: "x" }))).toBe("bad_message");
    const kicked = { type: "kicked", room: "a", by: "mod" };
    expect(server({ ...kicked, until: "2030-01-01T00:00:00.000Z", reason: "spam" }).ok).toBe(true);
    for (const until of ["2030-01-01", "tomorrow", 1893456000000, "2030-01-01T00:00:00Z"]) {
      expect(codeOf(server({ ...kicked, until }))).toBe("bad_message");
    }
    expect(codeOf(server({ ...kicked, reason: "" }))).toBe("bad_message");
  });
});

describe("v2 names", () => {
  it("never takes a v1 room name for a direct one: no v1 room name starts with ~", () => {
    fc.assert(
      fc.property(fc.string({ unit: anyCodePoint, maxLength: 20 }), (s) => {
        expect(isValidRoom(`~${s}`)).toBe(false);
        expect(v2.isDirectRoom(s) && isValidRoom(s)).toBe(false);
      }),
      { numRuns: 200 },
    );
    fc.assert(
      fc.property(v1RoomArb, directRoomArb, (v1Room, direct) => {
        expect(v2.isValidRoomV2(v1Room) && !v2.isDirectRoom(v1Room)).toBe(true);
        expect(v2.isValidRoomV2(direct) && v2.isDirectRoom(direct) && !isValidRoom(direct)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it("names a pair's direct room the same whichever asks, one room per pair", () => {
    const userId = fc.stringMatching(/^[A-Za-z0-9_-]{1,63}$/);
    fc.assert(
      fc.property(userId, userId, (a, b) => {
        const name = v2.directRoomName(a, b);
        if (a === b) return expect(name).toBeUndefined();
        expect(name).toBe(v2.directRoomName(b, a) as string);
        expect(v2.isDirectRoom(name as string)).toBe(true);
        expect(client({ type: "join", room: name }).ok).toBe(true);
        // The name splits back into the pair.
        expect((name as string).slice(1).split(".").sort()).toStrictEqual([a, b].sort());
      }),
      { numRuns: 200 },
    );
    for (const [a, b] of [
      ["a.b", "c"],
      ["ann@example.com", "bob"],
      ["", "x"],
      ["x".repeat(64), "y"],
    ] as const) {
      expect(v2.directRoomName(a, b)).toBeUndefined();
    }
  });
});

describe("v2 limits and codes", () => {
  it("keeps v1's limits and codes, and adds v2's", () => {
    expect(LIMITS_V2).toMatchObject(LIMITS);
    expect(LIMITS_V2.topicMax).toBe(200);
    expect(LIMITS_V2.reasonMax).toBe(200);
    expect(LIMITS_V2.emojiMax).toBe(32);
    expect(LIMITS_V2.reactionsPerPost).toBe(20);
    expect(LIMITS_V2.unreadMax).toBe(1000);
    expect(LIMITS_V2.syncMax).toBe(500);
    expect(v2.PROTOCOL_VERSION_V2).toBe(2);
    expect(ERROR_CODES_V2).toStrictEqual([...ERROR_CODES, "not_found"]);
    expect(v2.CLOSE_V2).toStrictEqual({ ...CLOSE, kicked: 4003 });
  });
});
