/** Property tests of protocol/: every message round-trips, every broken frame is refused with the right code. */
import { describe, expect, it } from "bun:test";
import fc from "fast-check";
import {
  ChatText,
  type ClientMessage,
  type ClientMessageType,
  ClientRef,
  type ConnectParams,
  charCount,
  compareNicks,
  DEFAULT_ROOM,
  type Decoded,
  decodeClientMessage,
  decodeServerMessage,
  ERROR_CODES,
  type ErrorCode,
  encode,
  firstFreeNick,
  isValidNick,
  isWellFormed,
  LIMITS,
  NickName,
  nickKey,
  nickKeyByTables,
  parseConnectQuery,
  RoomName,
  type ServerMessage,
  type ServerMessageType,
} from "../protocol";
import { caseFold, scriptCodes } from "../protocol/unicode/tables";

// The test's own picture of a name character, independent of protocol/names.ts:
// a Unicode letter or digit, `_`, `-` or `.`, never an invisible one (Hangul fillers are letters).
const NAME_CHAR = /^[\p{L}\p{N}_.-]$/u;
const INVISIBLE = /\p{Default_Ignorable_Code_Point}/u;

// ---------------------------------------------------------------------------------------------
// Arbitraries

/** One code point of any kind, lone surrogates included, weighted towards astral ones. */
const anyCodePoint = fc.oneof(
  fc.integer({ min: 0, max: 0x10ffff }).map((cp) => String.fromCodePoint(cp)),
  fc.integer({ min: 0x10000, max: 0x10ffff }).map((cp) => String.fromCodePoint(cp)),
  fc.constantFrom("a", " ", "é", "😀", "𝔸", "\n", '"', "\\", "\u0000"),
);

/** One code point of any kind but a surrogate: strings of them are well-formed Unicode. */
const wellFormedCodePoint = anyCodePoint.filter((c) => !/^[\ud800-\udfff]$/.test(c));

/** A lone surrogate: high or low. */
const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((u) => String.fromCharCode(u));

/** One whole code point, never a surrogate half: a string of n of them has exactly n characters. */
const wholeCodePoint = fc
  .oneof(
    fc.integer({ min: 0, max: 0xd7ff }),
    fc.integer({ min: 0xe000, max: 0x10ffff }),
    fc.integer({ min: 0x1f600, max: 0x1f64f }),
  )
  .map((cp) => String.fromCodePoint(cp));

const nameChar = fc.oneof(
  fc.constantFrom(..."abcxyzABCXYZ0189_-."),
  fc.constantFrom("é", "ß", "Ж", "漢", "ñ", "ع", "𝔸", "𐐀", "٣", "Ⅻ", "ǅ", "Ω"),
  fc
    .integer({ min: 0x80, max: 0x2ffff })
    .map((cp) => String.fromCodePoint(cp))
    .filter((c) => NAME_CHAR.test(c) && !INVISIBLE.test(c) && c.normalize("NFC") === c),
);

const nameOf = (min: number, max: number) =>
  fc.array(nameChar, { minLength: min, maxLength: max }).map((cs) => cs.join(""));

/** Names longer than `max` characters even after NFC, which may compose Hangul jamo. */
const tooLongName = (max: number) =>
  nameOf(max + 1, max + 8).filter((s) => charCount(s.normalize("NFC")) > max);

/**
 * Name characters of one script, as the test sees scripts (the engine's own \p{Script_Extensions}),
 * with those of no script in particular: digits, `_`, `-`, `.`, mathematical letters.
 */
const COMMON_NAME_CHARS = fc.constantFrom(..."0189_-.", "𝔸", "𝐛");
const SCRIPTS: Record<string, { examples: string; ranges: Array<[number, number]> }> = {
  Latin: {
    examples: "abcxyzABCXYZéßñǅⅫ",
    ranges: [
      [0x41, 0x24f],
      [0x1e00, 0x1eff],
      [0xff21, 0xff5a],
    ],
  },
  Greek: {
    examples: "ΩαβλσςΣ",
    ranges: [
      [0x370, 0x3ff],
      [0x1f00, 0x1fff],
    ],
  },
  Cyrillic: { examples: "ЖжаярӏѕЁ", ranges: [[0x400, 0x52f]] },
  Arabic: { examples: "عبت٣", ranges: [[0x620, 0x6ff]] },
  Han: {
    examples: "漢字中",
    ranges: [
      [0x4e00, 0x9fff],
      [0x20000, 0x2a6df],
    ],
  },
  Hangul: { examples: "한국어", ranges: [[0xac00, 0xd7a3]] },
  Deseret: { examples: "𐐀𐐨", ranges: [[0x10400, 0x1044f]] },
};

function scriptChar(script: string): fc.Arbitrary<string> {
  const { examples, ranges } = SCRIPTS[script] as (typeof SCRIPTS)[string];
  const inScript = new RegExp(`^\\p{Script_Extensions=${script}}$`, "u");
  return fc.oneof(
    fc.constantFrom(...examples),
    fc
      .oneof(...ranges.map(([min, max]) => fc.integer({ min, max })))
      .map((cp) => String.fromCodePoint(cp))
      .filter((c) => NAME_CHAR.test(c) && !INVISIBLE.test(c) && c.normalize("NFC") === c && inScript.test(c)),
  );
}

/** A nickname in one script (UTS #39's "highly restrictive" names), of `min` to `max` characters. */
const singleScriptName = (min: number, max: number) =>
  fc
    .constantFrom(...Object.keys(SCRIPTS))
    .chain((script) =>
      fc.array(fc.oneof({ arbitrary: scriptChar(script), weight: 4 }, COMMON_NAME_CHARS), {
        minLength: min,
        maxLength: max,
      }),
    )
    .map((cs) => cs.join(""));

const nickArb = singleScriptName(1, LIMITS.nickMax);
const roomArb = nameOf(1, LIMITS.roomMax);
/** A nickname as a client may type it: white space around it is trimmed away. */
const rawNickArb = fc
  .tuple(fc.constantFrom("", " ", "\t", "  "), nickArb, fc.constantFrom("", " ", "\n"))
  .map(([a, n, b]) => a + n + b);

const textArb = fc
  .oneof(
    fc.string({ unit: wellFormedCodePoint, minLength: 1, maxLength: LIMITS.textMax }),
    fc.string({ unit: wellFormedCodePoint, minLength: LIMITS.textMax - 5, maxLength: LIMITS.textMax }),
  )
  .filter((s) => s.trim().length > 0);

const idArb = fc.string({ unit: wellFormedCodePoint, minLength: 1, maxLength: LIMITS.idMax });
const seqArb = fc.maxSafeNat();
const positiveSeqArb = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });
const opaqueArb = fc.string({ unit: anyCodePoint, minLength: 1, maxLength: LIMITS.opaqueMax });
const isoArb = fc
  .date({ min: new Date(0), max: new Date("9999-12-31T23:59:59.999Z"), noInvalidDate: true })
  .map((d) => d.toISOString());

const clientArbs = {
  chat: fc.record(
    { type: fc.constant("chat"), text: textArb, id: idArb },
    { requiredKeys: ["type", "text"] },
  ),
  nick: fc.record({ type: fc.constant("nick"), nick: rawNickArb }),
  join: fc.record(
    { type: fc.constant("join"), room: roomArb, since: seqArb },
    { requiredKeys: ["type", "room"] },
  ),
  history: fc.record(
    { type: fc.constant("history"), before: seqArb, limit: fc.integer({ min: 1, max: LIMITS.historyMax }) },
    { requiredKeys: ["type"] },
  ),
  who: fc.record({ type: fc.constant("who") }),
  typing: fc.record({ type: fc.constant("typing") }),
} satisfies Record<ClientMessageType, fc.Arbitrary<ClientMessage>>;

const chatMessageArb = fc.record({
  type: fc.constant("chat"),
  room: roomArb,
  seq: positiveSeqArb,
  nick: nickArb,
  text: textArb,
  sentAt: isoArb,
});

const presenceEventArb = fc.oneof(
  fc.record({ event: fc.constant("join"), nick: nickArb }),
  fc.record({ event: fc.constant("leave"), nick: nickArb }),
  fc.record({ event: fc.constant("nick"), from: nickArb, nick: nickArb }),
);

const smallChat = fc.record({
  type: fc.constant("chat"),
  room: roomArb,
  seq: positiveSeqArb,
  nick: nickArb,
  text: fc.string({ unit: anyCodePoint, minLength: 1, maxLength: 20 }).filter((s) => s.trim() !== ""),
  sentAt: isoArb,
});

const serverArbs = {
  welcome: fc.record({
    type: fc.constant("welcome"),
    protocol: fc.constant(1),
    connectionId: opaqueArb,
    room: roomArb,
    nick: nickArb,
    users: fc.array(nickArb, { maxLength: 5 }),
    history: fc.array(smallChat, { maxLength: 4 }),
    historyTruncated: fc.boolean(),
    lastSeq: seqArb,
    resumeToken: opaqueArb,
  }),
  chat: chatMessageArb,
  presence: fc.record({
    type: fc.constant("presence"),
    room: roomArb,
    events: fc.array(presenceEventArb, { minLength: 1, maxLength: 5 }),
  }),
  users: fc.record({ type: fc.constant("users"), room: roomArb, users: fc.array(nickArb, { maxLength: 8 }) }),
  history: fc.record({
    type: fc.constant("history"),
    room: roomArb,
    messages: fc.array(smallChat, { maxLength: 4 }),
    hasMore: fc.boolean(),
  }),
  ack: fc.record({ type: fc.constant("ack"), id: idArb, seq: positiveSeqArb }),
  typing: fc.record({ type: fc.constant("typing"), room: roomArb, nick: nickArb }),
  error: fc.record(
    {
      type: fc.constant("error"),
      code: fc.constantFrom(...ERROR_CODES),
      message: fc.string({ unit: anyCodePoint, maxLength: LIMITS.opaqueMax }),
      id: idArb,
    },
    { requiredKeys: ["type", "code", "message"] },
  ),
} satisfies Record<ServerMessageType, fc.Arbitrary<ServerMessage>>;

const anyClientMessage: fc.Arbitrary<ClientMessage> = fc.oneof(...Object.values(clientArbs));
const anyServerMessage: fc.Arbitrary<ServerMessage> = fc.oneof(...Object.values(serverArbs));

/** Every field name of either direction: an extra key must be none of them. */
const KNOWN_KEYS = new Set(["type", "text", "id", "nick", "room", "since", "before", "limit"]);

// ---------------------------------------------------------------------------------------------
// Helpers

/** The refusal of a decode or query parse; fails the test when the input was accepted. */
function errorOf<E>(result: { ok: true; value: unknown } | { ok: false; error: E }): E {
  if (result.ok) throw new Error(`expected a refusal, got ${JSON.stringify(result.value).slice(0, 200)}`);
  return result.error;
}

function codeOf<T>(result: Decoded<T>): ErrorCode {
  return errorOf(result).code;
}

const frame = (value: unknown) => JSON.stringify(value);

/** A valid name with one bad character put in its middle, so trimming cannot remove it. */
function withInside(name: string, bad: string): string {
  const cs = [...name];
  if (cs.length < 2) cs.push("x");
  const at = Math.floor(cs.length / 2);
  return [...cs.slice(0, at), bad, ...cs.slice(at)].join("");
}

const INVISIBLE_OR_CONTROL = [
  "\u200b", // zero width space
  "\u200c", // zero width non-joiner
  "\u200d", // zero width joiner
  "\u2060", // word joiner
  "\u00ad", // soft hyphen
  "\u200e", // left-to-right mark
  "\u061c", // Arabic letter mark
  "\u202e", // right-to-left override
  "\u202d", // left-to-right override
  "\u2066", // left-to-right isolate
  "\u2069", // pop directional isolate
  "\u3164", // Hangul filler: a "letter" that renders as nothing
  "\uffa0", // halfwidth Hangul filler
  "\u115f", // Hangul choseong filler
  "\u0000",
  "\u0007",
  "\u001b",
  "\u007f",
  "\u0085",
  "\ufeff", // byte order mark inside a name
];

const badNameChar = fc.constantFrom(" ", "!", "@", "#", "/", ":", "<", "'", "😀", ...INVISIBLE_OR_CONTROL);

/** One letter of each of these scripts, and nothing else (its Script_Extensions is that script alone). */
const PLAIN_SCRIPT_LETTERS: Record<string, string> = {
  Latin: "apé",
  Cyrillic: "аржЖ",
  Greek: "αοΩ",
  Arabic: "عب",
  Hebrew: "אב",
  Armenian: "աԱ",
};

/**
 * Names mixing two scripts that no "highly restrictive" combination allows: a name in one of them
 * with a letter of the other inside (Latin with Cyrillic, Greek with Arabic, ...).
 */
const mixedScriptNickArb = fc
  .tuple(
    fc.constantFrom(...Object.keys(PLAIN_SCRIPT_LETTERS)),
    fc.constantFrom(...Object.keys(PLAIN_SCRIPT_LETTERS)),
  )
  .filter(([a, b]) => a !== b)
  .chain(([a, b]) =>
    fc.tuple(
      fc.array(fc.constantFrom(...(PLAIN_SCRIPT_LETTERS[a] as string), ..."01_-."), { maxLength: 20 }),
      fc.constantFrom(...(PLAIN_SCRIPT_LETTERS[a] as string)),
      fc.constantFrom(...(PLAIN_SCRIPT_LETTERS[b] as string)),
    ),
  )
  .map(([rest, own, other]) => withInside(own + rest.join(""), other));

/** Nicknames the rules refuse: empty, too long, holding a character outside the set, or mixing scripts. */
const badNickArb = fc.oneof(
  fc.constantFrom("", " ", "\t\n", "\u3164", "\u115f\u1160", "\u0301bob", "b".repeat(300), "\u0430nn"),
  tooLongName(LIMITS.nickMax),
  fc.tuple(nickArb, badNameChar).map(([n, c]) => withInside(n, c)),
  mixedScriptNickArb,
);

const badRoomArb = fc.oneof(
  fc.constantFrom("", " ", " lobby", "lobby ", "a b", "\t", "\u0301lobby", "r".repeat(300)),
  tooLongName(LIMITS.roomMax),
  fc.tuple(roomArb, badNameChar).map(([r, c]) => withInside(r, c)),
);

// ---------------------------------------------------------------------------------------------

describe("encode and decode", () => {
  for (const [type, arb] of Object.entries(clientArbs)) {
    it(`round-trips every valid client \`${type}\` message`, () => {
      fc.assert(
        fc.property(arb as fc.Arbitrary<ClientMessage>, (m) => {
          expect(decodeClientMessage(encode(m))).toStrictEqual({ ok: true, value: m });
        }),
        { numRuns: 40 },
      );
    });
  }

  for (const [type, arb] of Object.entries(serverArbs)) {
    it(`round-trips every valid server \`${type}\` message`, () => {
      fc.assert(
        fc.property(arb as fc.Arbitrary<ServerMessage>, (m) => {
          expect(decodeServerMessage(encode(m))).toStrictEqual({ ok: true, value: m });
        }),
        { numRuns: 30 },
      );
    });
  }

  it("keeps the two directions apart: no server message decodes as a client one", () => {
    fc.assert(
      fc.property(anyServerMessage, (m) => {
        expect(decodeClientMessage(encode(m)).ok).toBe(false);
      }),
      { numRuns: 50 },
    );
  });
});

describe("decodeClientMessage", () => {
  it("answers any junk string with bad_json when it is not JSON, else bad_message, and never throws", () => {
    fc.assert(
      fc.property(fc.string({ unit: anyCodePoint, maxLength: 60 }), (junk) => {
        let isJson = true;
        try {
          JSON.parse(junk);
        } catch {
          isJson = false;
        }
        const result = decodeClientMessage(junk);
        expect(codeOf(result)).toBe(isJson ? "bad_message" : "bad_json");
      }),
      { numRuns: 200 },
    );
  });

  it("answers a broken copy of a valid frame with an error, never a throw", () => {
    fc.assert(
      fc.property(anyClientMessage, fc.nat(), fc.nat({ max: 10 }), (m, at, cut) => {
        const text = encode(m);
        const i = at % text.length;
        const broken = text.slice(0, i) + text.slice(i + 1 + cut);
        const result = decodeClientMessage(broken);
        if (!result.ok) expect(ERROR_CODES).toContain(result.error.code);
      }),
      { numRuns: 100 },
    );
  });

  it("refuses binary frames with bad_frame, whatever they hold", () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), anyClientMessage.map(encodeBytes)), (bytes) => {
        expect(codeOf(decodeClientMessage(bytes))).toBe("bad_frame");
        expect(codeOf(decodeClientMessage(bytes.buffer as ArrayBuffer))).toBe("bad_frame");
        expect(codeOf(decodeServerMessage(bytes))).toBe("bad_frame");
      }),
      { numRuns: 50 },
    );
  });

  it("refuses JSON that is not an object with bad_message", () => {
    for (const value of [[], [{ type: "who" }], 1, -0.5, null, true, "who", '{"type":"who"}']) {
      expect(codeOf(decodeClientMessage(frame(value)))).toBe("bad_message");
    }
    fc.assert(
      fc.property(
        fc.jsonValue().filter((v) => typeof v !== "object" || v === null || Array.isArray(v)),
        (v) => {
          expect(codeOf(decodeClientMessage(frame(v)))).toBe("bad_message");
        },
      ),
      { numRuns: 100 },
    );
  });

  it("refuses an object without a string type with bad_message", () => {
    for (const value of [{}, { type: 1 }, { type: null }, { type: ["chat"] }, { text: "hi" }]) {
      expect(codeOf(decodeClientMessage(frame(value)))).toBe("bad_message");
    }
  });

  it("refuses an unknown type with bad_message", () => {
    const known = new Set(Object.keys(clientArbs));
    fc.assert(
      fc.property(
        fc.string({ unit: anyCodePoint, maxLength: 12 }).filter((t) => !known.has(t)),
        (type) => {
          expect(codeOf(decodeClientMessage(frame({ type })))).toBe("bad_message");
        },
      ),
      { numRuns: 100 },
    );
    for (const type of ["CHAT", "Chat", " chat", "chat ", "welcome", "ack", "__proto__", "constructor"]) {
      expect(codeOf(decodeClientMessage(frame({ type, text: "hi" })))).toBe("bad_message");
    }
  });

  it("refuses extra keys, __proto__ and constructor included, with bad_message", () => {
    const extraKey = fc
      .oneof(
        fc.constantFrom(
          "__proto__",
          "constructor",
          "prototype",
          "toString",
          "hasOwnProperty",
          "valueOf",
          "Type",
        ),
        fc.string({ minLength: 1, maxLength: 10 }),
      )
      .filter((k) => !KNOWN_KEYS.has(k));
    fc.assert(
      fc.property(
        fc.oneof(anyClientMessage, clientArbs.who, clientArbs.typing),
        extraKey,
        fc.jsonValue({ maxDepth: 2 }),
        (m, key, value) => {
          // Spliced in as text: `{...m, __proto__: v}` in JS would set the prototype, not add a key.
          const text = `${encode(m).slice(0, -1)},${JSON.stringify(key)}:${JSON.stringify(value) ?? "null"}}`;
          expect(Object.keys(JSON.parse(text))).toContain(key);
          expect(codeOf(decodeClientMessage(text))).toBe("bad_message");
        },
      ),
      { numRuns: 100 },
    );
  });

  it("refuses a lone surrogate in any string of any client message with bad_message", () => {
    /** The message with a lone surrogate put inside one of its string fields (type included). */
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
        // JSON.stringify writes the lone surrogate as an escape, as a client's JSON encoder may.
        expect(codeOf(decodeClientMessage(JSON.stringify(m)))).toBe("bad_message");
      }),
      { numRuns: 300 },
    );
    for (const value of [
      { type: "chat", text: "hi\ud800" },
      { type: "chat", text: `${"x".repeat(LIMITS.textMax + 1)}\udfff` },
      { type: "chat", text: "hi", id: "\ude00\ud83d" },
      { type: "nick", nick: "ann\ud800" },
      { type: "join", room: "\ud800lobby" },
      { type: "who", "\ud800": 1 },
    ]) {
      expect(codeOf(decodeClientMessage(frame(value)))).toBe("bad_message");
    }
  });

  it("has schemas that refuse a lone surrogate too, for code that parses without decodeClientMessage", () => {
    for (const [schema, good] of [
      [ChatText, "hi"],
      [ClientRef, "id"],
      [NickName, "ann"],
      [RoomName, "lobby"],
    ] as const) {
      expect(schema.safeParse(good).success).toBe(true);
      const result = schema.safeParse(`${good}\ud800`);
      expect(result.success).toBe(false);
      expect(result.error?.issues[0]?.message).toContain("well-formed");
    }
  });

  it("keeps every error message it sends well-formed, even cut short after an astral character", () => {
    fc.assert(
      fc.property(fc.string({ unit: wholeCodePoint, minLength: 100, maxLength: 150 }), (key) => {
        const error = errorOf(decodeClientMessage(`{"type":"who",${JSON.stringify(key)}:1}`));
        expect(error.code).toBe("bad_message");
        expect(isWellFormed(error.message)).toBe(true);
      }),
      { numRuns: 200 },
    );
    for (const key of ["😀".repeat(150), `a${"😀".repeat(150)}`, `ab${"😀".repeat(150)}`]) {
      const error = errorOf(decodeClientMessage(`{"type":"who",${JSON.stringify(key)}:1}`));
      expect(isWellFormed(error.message)).toBe(true);
    }
  });

  it("refuses a server message with an extra key too", () => {
    fc.assert(
      fc.property(anyServerMessage, fc.constantFrom("__proto__", "constructor", "extra"), (m, key) => {
        const text = `${encode(m).slice(0, -1)},${JSON.stringify(key)}:{}}`;
        expect(codeOf(decodeServerMessage(text))).toBe("bad_message");
      }),
      { numRuns: 50 },
    );
  });

  describe("chat", () => {
    const exactly = (n: number) =>
      fc.array(wholeCodePoint, { minLength: n, maxLength: n }).map((cs) => `x${cs.slice(1).join("")}`);

    it("accepts text of exactly 4000 characters, astral ones counting once", () => {
      fc.assert(
        fc.property(exactly(LIMITS.textMax), (text) => {
          expect(charCount(text)).toBe(LIMITS.textMax);
          expect(decodeClientMessage(frame({ type: "chat", text })).ok).toBe(true);
        }),
        { numRuns: 10 },
      );
      const astral = "😀".repeat(LIMITS.textMax);
      expect(decodeClientMessage(frame({ type: "chat", text: astral })).ok).toBe(true);
    });

    it("refuses text of 4001 characters and more with too_large", () => {
      fc.assert(
        fc.property(exactly(LIMITS.textMax + 1), (text) => {
          expect(codeOf(decodeClientMessage(frame({ type: "chat", text })))).toBe("too_large");
        }),
        { numRuns: 10 },
      );
      for (const text of ["a".repeat(4001), "😀".repeat(4001), "😀".repeat(9000), "a".repeat(100_000)]) {
        expect(codeOf(decodeClientMessage(frame({ type: "chat", text, id: "q" })))).toBe("too_large");
      }
    });

    it("refuses empty or white-space-only text with bad_message", () => {
      const space = fc.constantFrom(" ", "\t", "\n", "\r", "\u00a0", "\u2003", "\u3000", "\u2028", "\ufeff");
      fc.assert(
        fc.property(fc.array(space, { maxLength: 30 }), (cs) => {
          expect(codeOf(decodeClientMessage(frame({ type: "chat", text: cs.join("") })))).toBe("bad_message");
        }),
        { numRuns: 50 },
      );
    });

    it("refuses a text that is not a string, and an id outside 1-64 characters, with bad_message", () => {
      for (const value of [
        { type: "chat" },
        { type: "chat", text: 5 },
        { type: "chat", text: ["hi"] },
        { type: "chat", text: "hi", id: "" },
        { type: "chat", text: "hi", id: "x".repeat(LIMITS.idMax + 1) },
        { type: "chat", text: "hi", id: 7 },
      ]) {
        expect(codeOf(decodeClientMessage(frame(value)))).toBe("bad_message");
      }
    });
  });

  describe("nick", () => {
    it("refuses an invalid nickname with nick_invalid", () => {
      fc.assert(
        fc.property(badNickArb, (nick) => {
          expect(codeOf(decodeClientMessage(frame({ type: "nick", nick })))).toBe("nick_invalid");
        }),
        { numRuns: 150 },
      );
    });

    it("accepts a nickname that becomes valid after NFC and trimming", () => {
      for (const nick of [" bob ", "e\u0301", "\tZoë\n", "Å"]) {
        expect(decodeClientMessage(frame({ type: "nick", nick })).ok).toBe(true);
      }
    });
  });

  describe("join", () => {
    it("refuses an invalid room with room_invalid", () => {
      fc.assert(
        fc.property(badRoomArb, (room) => {
          expect(codeOf(decodeClientMessage(frame({ type: "join", room })))).toBe("room_invalid");
        }),
        { numRuns: 150 },
      );
    });

    it("refuses a negative or fractional since with bad_message", () => {
      fc.assert(
        fc.property(badSeqArb(), (since) => {
          expect(codeOf(decodeClientMessage(frame({ type: "join", room: "lobby", since })))).toBe(
            "bad_message",
          );
        }),
        { numRuns: 100 },
      );
    });
  });

  describe("history", () => {
    it("refuses a limit of 0, 201 or a non-integer with bad_message", () => {
      for (const limit of [0, LIMITS.historyMax + 1, 1.5, -1, "10", null, 1e300]) {
        expect(codeOf(decodeClientMessage(frame({ type: "history", limit })))).toBe("bad_message");
      }
      fc.assert(
        fc.property(
          fc.oneof(
            fc.integer({ max: 0 }),
            fc.integer({ min: LIMITS.historyMax + 1 }),
            fc.double({ min: 0, max: 300, noNaN: true }).filter((x) => !Number.isInteger(x)),
          ),
          (limit) => {
            expect(codeOf(decodeClientMessage(frame({ type: "history", limit })))).toBe("bad_message");
          },
        ),
        { numRuns: 100 },
      );
    });

    it("accepts the limits 1 and 200", () => {
      for (const limit of [1, LIMITS.historyMax]) {
        expect(decodeClientMessage(frame({ type: "history", limit })).ok).toBe(true);
      }
    });

    it("refuses a negative or fractional before with bad_message", () => {
      fc.assert(
        fc.property(badSeqArb(), (before) => {
          expect(codeOf(decodeClientMessage(frame({ type: "history", before })))).toBe("bad_message");
        }),
        { numRuns: 100 },
      );
    });
  });

  describe("error replies", () => {
    it("echo the failing frame's id when it is a valid id", () => {
      const failing = fc.oneof(
        fc.constant({ type: "chat", text: "   " }),
        fc.constant({ type: "chat", text: "a".repeat(LIMITS.textMax + 1) }),
        fc.constant({ type: "nick", nick: "no spaces" }),
        fc.constant({ type: "join", room: "" }),
        fc.constant({ type: "history", limit: 0 }),
        fc.constant({ type: "bogus" }),
        fc.constant({ type: 42 }),
        fc.constant({ type: "who", extra: 1 }),
      );
      fc.assert(
        fc.property(failing, idArb, (value, id) => {
          expect(errorOf(decodeClientMessage(frame({ ...value, id }))).id).toBe(id);
        }),
        { numRuns: 100 },
      );
      // An id of 64 astral characters is valid: characters are code points.
      const astral = "😀".repeat(LIMITS.idMax);
      expect(errorOf(decodeClientMessage(frame({ type: "bogus", id: astral }))).id).toBe(astral);
    });

    it("carry no id when the frame's id is not a valid one", () => {
      for (const id of ["", "x".repeat(LIMITS.idMax + 1), 5, null, ["a"], { a: 1 }, "a\ud800", "\udc00"]) {
        const error = errorOf(decodeClientMessage(frame({ type: "chat", text: " ", id })));
        expect(error).not.toHaveProperty("id");
      }
      expect(errorOf(decodeClientMessage("not json"))).not.toHaveProperty("id");
    });
  });

  it("never throws on deep nesting 100,000 levels deep", () => {
    const depth = 100_000;
    const frames = [
      "[".repeat(depth) + "]".repeat(depth),
      "[".repeat(depth),
      `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`,
      `{"type":"chat","text":${"[".repeat(depth)}${"]".repeat(depth)}}`,
      `{"type":"who","x":${'{"a":'.repeat(depth)}1${"}".repeat(depth)}}`,
    ];
    for (const f of frames) {
      let result: Decoded<ClientMessage> | undefined;
      expect(() => {
        result = decodeClientMessage(f);
      }).not.toThrow();
      expect(["bad_json", "bad_message"]).toContain(codeOf(result as Decoded<ClientMessage>));
      expect(() => decodeServerMessage(f)).not.toThrow();
    }
  });
});

function encodeBytes(m: ClientMessage): Uint8Array {
  return new TextEncoder().encode(encode(m));
}

function badSeqArb(): fc.Arbitrary<number> {
  return fc.oneof(
    fc.integer({ min: -Number.MAX_SAFE_INTEGER, max: -1 }),
    fc.double({ min: -1e9, max: 1e9, noNaN: true }).filter((x) => !Number.isInteger(x)),
    fc.constantFrom(-1, 0.5, 1.000001, -0.5),
  );
}

// ---------------------------------------------------------------------------------------------

describe("parseConnectQuery", () => {
  const parse = (params: Record<string, string>) => parseConnectQuery(new URLSearchParams(params));

  it("puts a client with no parameters in the default room with no nickname", () => {
    expect(parse({})).toStrictEqual({ ok: true, value: { room: DEFAULT_ROOM } });
  });

  it("counts empty parameters as absent", () => {
    expect(parse({ room: "", nick: "", since: "", resume: "", token: "" })).toStrictEqual({
      ok: true,
      value: { room: DEFAULT_ROOM },
    });
  });

  it("keeps every valid room and nickname as given", () => {
    fc.assert(
      fc.property(roomArb, nickArb, seqArb, (room, nick, since) => {
        const result = parse({ room, nick, since: String(since) });
        expect(result).toStrictEqual({
          ok: true,
          value: { room: room.normalize("NFC"), nick: nick.normalize("NFC"), since },
        });
      }),
      { numRuns: 100 },
    );
  });

  it("refuses an invalid room with room_invalid", () => {
    fc.assert(
      fc.property(
        badRoomArb.filter((r) => r !== ""),
        (room) => {
          expect(errorOf(parse({ room })).code).toBe("room_invalid");
        },
      ),
      { numRuns: 100 },
    );
  });

  it("refuses an invalid nickname with nick_invalid", () => {
    fc.assert(
      fc.property(
        badNickArb.filter((n) => n !== ""),
        (nick) => {
          expect(errorOf(parse({ nick })).code).toBe("nick_invalid");
        },
      ),
      { numRuns: 100 },
    );
  });

  it("refuses a nickname holding an invisible, bidi-override or control character", () => {
    for (const bad of INVISIBLE_OR_CONTROL) {
      for (const nick of [`bob${bad}x`, `${bad}bob`, `bob${bad}`, bad]) {
        // Trimming may strip a leading or trailing one; what is left must be valid on its own.
        const result = parse({ nick });
        if (result.ok) expect(result.value.nick).toBe("bob");
        else expect(result.error.code).toBe("nick_invalid");
      }
      expect(errorOf(parse({ nick: `bo${bad}b` })).code).toBe("nick_invalid");
    }
  });

  it("refuses a since that is not an integer >= 0 with bad_request", () => {
    for (const since of ["-1", "1.5", "abc", "1e3", " 1", "0x10", "+1", "99999999999999999", "１"]) {
      expect(errorOf(parse({ since })).code).toBe("bad_request");
    }
    for (const [since, n] of [
      ["0", 0],
      ["42", 42],
      ["007", 7],
    ] as const) {
      expect(parse({ since })).toStrictEqual({ ok: true, value: { room: DEFAULT_ROOM, since: n } });
    }
  });

  it("normalises a nickname to NFC and trims it", () => {
    expect(parse({ nick: "e\u0301" })).toStrictEqual({
      ok: true,
      value: { room: DEFAULT_ROOM, nick: "\u00e9" },
    });
    expect(parse({ nick: "  Zoe\u0308 " })).toStrictEqual({
      ok: true,
      value: { room: DEFAULT_ROOM, nick: "Zo\u00eb" },
    });
    fc.assert(
      fc.property(rawNickArb, (raw) => {
        const result = parse({ nick: raw.normalize("NFD") });
        expect(result).toStrictEqual({
          ok: true,
          value: { room: DEFAULT_ROOM, nick: raw.normalize("NFC").trim() },
        });
      }),
      { numRuns: 100 },
    );
  });

  it("refuses a room or nickname holding a lone surrogate: URLSearchParams makes it U+FFFD", () => {
    fc.assert(
      fc.property(nickArb, roomArb, loneSurrogate, (nick, room, bad) => {
        expect(errorOf(parse({ nick: withInside(nick, bad) })).code).toBe("nick_invalid");
        expect(errorOf(parse({ room: withInside(room, bad) })).code).toBe("room_invalid");
        const { value } = parse({ resume: `token${bad}`, token: `t${bad}` }) as { value: ConnectParams };
        expect(isWellFormed(value.resume as string) && isWellFormed(value.token as string)).toBe(true);
      }),
      { numRuns: 100 },
    );
    const percent = parseConnectQuery(new URL("ws://h/ws?nick=a%ED%A0%80&room=r").searchParams);
    expect(errorOf(percent).code).toBe("nick_invalid");
  });

  it("ignores a resume token that is too long to be one, and passes the rest through", () => {
    const long = "r".repeat(LIMITS.opaqueMax + 1);
    expect(parse({ resume: long, token: "t.o.k" })).toStrictEqual({
      ok: true,
      value: { room: DEFAULT_ROOM, token: "t.o.k" },
    });
    expect(parse({ resume: "abc" })).toStrictEqual({
      ok: true,
      value: { room: DEFAULT_ROOM, resume: "abc" },
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe("firstFreeNick", () => {
  const takenBy = (nicks: readonly string[]) => {
    const keys = new Set(nicks.map(nickKey));
    return (key: string) => keys.has(key);
  };

  it("gives the nickname itself when it is free", () => {
    expect(firstFreeNick("bob", takenBy(["alice"]))).toBe("bob");
  });

  it("gives NICK-2, NICK-3, ... in order, comparing in any case", () => {
    expect(firstFreeNick("Bob", takenBy(["bob"]))).toBe("Bob-2");
    expect(firstFreeNick("Bob", takenBy(["BOB", "bob-2"]))).toBe("Bob-3");
    expect(firstFreeNick("Bob", takenBy(["bob", "bob-3"]))).toBe("Bob-2");
    fc.assert(
      fc.property(
        nickArb.filter((n) => charCount(n) <= 20),
        fc.integer({ min: 1, max: 30 }),
        (nick, k) => {
          const taken = [nick, ...Array.from({ length: k - 1 }, (_, i) => `${nick}-${i + 2}`)];
          expect(firstFreeNick(nick, takenBy(taken))).toBe(`${nick}-${k + 1}`);
        },
      ),
      { numRuns: 100 },
    );
  });

  it("cuts a long nickname so the result stays within 32 characters", () => {
    const long = "𝔸".repeat(LIMITS.nickMax);
    expect(firstFreeNick(long, takenBy([long]))).toBe(`${"𝔸".repeat(LIMITS.nickMax - 2)}-2`);
    fc.assert(
      fc.property(nickArb, fc.integer({ min: 1, max: 120 }), (nick, k) => {
        const taken: string[] = [nick];
        for (let i = 0; i < k; i++) {
          const next = firstFreeNick(nick, takenBy(taken));
          expect(charCount(next)).toBeLessThanOrEqual(LIMITS.nickMax);
          expect(isValidNick(next)).toBe(true);
          expect(taken.map(nickKey)).not.toContain(nickKey(next));
          taken.push(next);
        }
      }),
      { numRuns: 30 },
    );
  });
});

describe("compareNicks", () => {
  it("sorts case-insensitively", () => {
    expect(["bob", "Alice", "carol", "Dave"].sort(compareNicks)).toStrictEqual([
      "Alice",
      "bob",
      "carol",
      "Dave",
    ]);
    // Full case folding: ß is ss, ς is σ; equal folds are ordered by the exact string.
    expect(["STRASSE", "straße", "Strasse", "strasf", "strast"].sort(compareNicks)).toStrictEqual([
      "strasf",
      "STRASSE",
      "Strasse",
      "straße",
      "strast",
    ]);
    expect(["λογοσ", "ΛΟΓΟΣ", "λογος"].sort(compareNicks)).toStrictEqual(["ΛΟΓΟΣ", "λογος", "λογοσ"]);
    // Case-insensitive, not look-alike: user lists stay in the order people read.
    expect(["rnb", "mb", "0a", "oa"].sort(compareNicks)).toStrictEqual(["0a", "mb", "oa", "rnb"]);
    fc.assert(
      fc.property(fc.array(nickArb, { maxLength: 20 }), (nicks) => {
        const sorted = [...nicks].sort(compareNicks);
        for (let i = 1; i < sorted.length; i++) {
          expect(caseFold(sorted[i - 1] as string) <= caseFold(sorted[i] as string)).toBe(true);
        }
      }),
      { numRuns: 100 },
    );
    fc.assert(
      fc.property(fc.array(fc.stringMatching(/^[A-Za-z0-9_.-]{1,8}$/), { maxLength: 20 }), (nicks) => {
        const sorted = [...nicks].sort(compareNicks);
        for (let i = 1; i < sorted.length; i++) {
          expect((sorted[i - 1] as string).toLowerCase() <= (sorted[i] as string).toLowerCase()).toBe(true);
        }
      }),
      { numRuns: 100 },
    );
  });

  it("is a total order: the same list in any order sorts the same way", () => {
    expect(compareNicks("bob", "Bob")).not.toBe(0);
    expect(Math.sign(compareNicks("bob", "Bob")) + Math.sign(compareNicks("Bob", "bob"))).toBe(0);
    const caseVariants = nickArb.chain((n) =>
      fc.array(fc.constantFrom(n, n.toUpperCase(), n.toLowerCase(), `${n}x`), { maxLength: 6 }),
    );
    const listAndShuffle = fc
      .oneof(fc.array(nickArb, { maxLength: 12 }), caseVariants)
      .chain((ns) =>
        fc.tuple(fc.constant(ns), fc.shuffledSubarray(ns, { minLength: ns.length, maxLength: ns.length })),
      );
    fc.assert(
      fc.property(listAndShuffle, ([nicks, shuffled]) => {
        expect([...shuffled].sort(compareNicks)).toStrictEqual([...nicks].sort(compareNicks));
        for (const a of nicks) {
          for (const b of nicks) {
            expect(compareNicks(a, b) === 0).toBe(a === b);
            expect(Math.sign(compareNicks(a, b)) + Math.sign(compareNicks(b, a))).toBe(0);
          }
        }
      }),
      { numRuns: 100 },
    );
  });
});

describe("charCount", () => {
  it("counts code points, an astral character once and a lone surrogate once", () => {
    expect(charCount("")).toBe(0);
    expect(charCount("abc")).toBe(3);
    expect(charCount("😀")).toBe(1);
    expect(charCount("e\u0301")).toBe(2);
    expect(charCount("\ud83d")).toBe(1);
    expect(charCount("\ude00\ud83d")).toBe(2);
    fc.assert(
      fc.property(fc.string({ unit: anyCodePoint, maxLength: 50 }), (s) => {
        expect(charCount(s)).toBe([...s].length);
      }),
      { numRuns: 200 },
    );
  });
});

describe("isValidNick", () => {
  it("accepts scripts that need combining marks after a first letter", () => {
    for (const nick of ["नमस्ते", "ภาษาไทย", "Zoë", "e\u0301t\u0301e\u0301"])
      expect(isValidNick(nick)).toBe(true);
  });

  it("refuses a combining mark first, and invisible, bidi or control characters anywhere", () => {
    for (const nick of ["\u0301a", "ㅤ", "a\u202eb", "a\u200bb", "a\u0007", "a b"]) {
      expect(isValidNick(nick)).toBe(false);
    }
  });

  it("accepts a name in one script, with digits, _ - . and combining marks of any script", () => {
    fc.assert(
      fc.property(nickArb, (nick) => {
        expect(isValidNick(nick.normalize("NFC"))).toBe(true);
      }),
      { numRuns: 300 },
    );
    for (const nick of [
      "дима_1990",
      "Ωmega".slice(1),
      "λόγος",
      "e\u0301t\u0301e\u0301",
      "123",
      "_-.",
      "ａｎｎ",
    ]) {
      expect(isValidNick(nick)).toBe(true);
    }
  });

  it("accepts Latin with Han and kana, with Han and Bopomofo, or with Han and Hangul (UTS #39 highly restrictive)", () => {
    for (const nick of [
      "田中tanaka",
      "ひらがなカタカナ漢字abc",
      "カタカナ",
      "ㄅㄆ漢字x",
      "한국어abc漢字",
      "漢字",
    ]) {
      expect({ nick, valid: isValidNick(nick) }).toEqual({ nick, valid: true });
    }
  });

  it("refuses a name mixing scripts beyond that: Latin with Cyrillic or Greek, Hangul with kana, ...", () => {
    for (const nick of [
      "\u0430nn",
      "p\u0430yp\u0430l",
      "pαypal",
      "漢字Жж",
      "한국カナ",
      "ㄅㄆ한국",
      "abcאב",
    ]) {
      expect({ nick, valid: isValidNick(nick) }).toEqual({ nick, valid: false });
    }
    fc.assert(
      fc.property(mixedScriptNickArb, (nick) => {
        expect(isValidNick(nick)).toBe(false);
      }),
      { numRuns: 200 },
    );
  });

  it("knows each letter's scripts from the Unicode data", () => {
    expect(scriptCodes("a")).toEqual(["Latn"]);
    expect(scriptCodes("\u0430")).toEqual(["Cyrl"]);
    expect(scriptCodes("1")).toEqual([]);
    expect(scriptCodes("_")).toEqual([]);
    expect(scriptCodes("𝔸")).toEqual([]);
    // Script_Extensions, not Script: a combining acute is used with Latin, Cyrillic, Greek and a few more.
    expect(scriptCodes("\u0301")).toContain("Latn");
    expect(scriptCodes("\u0301")).toContain("Cyrl");
    expect(scriptCodes("ー").sort()).toEqual(["Hira", "Kana"]);
  });
});

describe("nickKey", () => {
  it("gives an ASCII name, character by character, the key the tables give the whole name", () => {
    const name = fc.stringMatching(/^[A-Za-z0-9_.-]{1,32}$/);
    fc.assert(
      fc.property(name, (s) => nickKey(s) === nickKeyByTables(s)),
      { numRuns: 2000 },
    );
    for (const s of ["rn", "m", "cl", "d", "0O", "l1I", "guest-10", "ann-2", "vv", "w"]) {
      expect(nickKey(s)).toBe(nickKeyByTables(s));
    }
  });

  it("makes ann, Ann, Cyrillic аnn, fullwidth ａｎｎ and mathematical 𝐚𝐧𝐧 one name", () => {
    const groups = [
      ["ann", "Ann", "ANN", "\u0430nn", "ａｎｎ", "ＡＮＮ", "𝐚𝐧𝐧", "𝐀𝐍𝐍"],
      ["straße", "strasse", "ſtrasse", "STRASSE", "STRAẞE", "Straße"],
      ["λογος", "λογοσ", "ΛΟΓΟΣ"],
      ["pace", "\u0440\u0430\u0441\u0435", "PACE"],
      ["paypal", "\u0440\u0430\u0443\u0440\u0430\u04cf", "PAYPAL"],
      ["suzy", "ꜱᴜᴢʏ"],
      ["đan", "d\u0336an", "d\u0335an"],
      ["bob-10", "bob-lo", "BOB-1O"],
      ["e\u0301", "\u00e9", "E\u0301", "\u00c9"],
    ];
    for (const group of groups) {
      expect(group.map(nickKey)).toEqual(group.map(() => nickKey(group[0] as string)));
    }
    const distinct = groups.map((g) => nickKey(g[0] as string));
    expect(new Set(distinct).size).toBe(distinct.length);
  });

  it("is its own key for guest-N and plain lower-case names (the Redis engine relies on the first)", () => {
    fc.assert(
      fc.property(fc.nat(), (n) => {
        expect(nickKey(`guest-${n}`)).toBe(`guest-${n}`);
        expect(nickKey(`GUEST-${n}`)).toBe(`guest-${n}`);
        expect(nickKey(`bob-${n}`)).toBe(`bob-${n}`);
      }),
      { numRuns: 200 },
    );
    for (const name of ["ann", "bob", "alice", "bee-2", "ann-10", "x_y.z"]) expect(nickKey(name)).toBe(name);
    // A number ending a name after a dash and its look-alike spelling share the key that number.
    expect(nickKey("ann-lo")).toBe("ann-10");
    expect(nickKey("ANN-IO")).toBe(nickKey("ann-io"));
  });

  it("keeps names apart that merely share letters", () => {
    for (const [a, b] of [
      ["ann", "anna"],
      ["ann", "an"],
      ["ann", "ánn"],
      ["bob", "bop"],
      ["ann", "ann_"],
      ["ann", "ann-2"],
    ] as const) {
      expect({ a, b, same: nickKey(a) === nickKey(b) }).toEqual({ a, b, same: false });
    }
    // Among lower-case letters only m looks like others (rn): the rest never collide.
    fc.assert(
      fc.property(fc.stringMatching(/^[a-ln-z]{1,10}$/), fc.stringMatching(/^[a-ln-z]{1,10}$/), (a, b) => {
        expect(nickKey(a) === nickKey(b)).toBe(a === b);
      }),
      { numRuns: 300 },
    );
  });

  it("is stable: the key of a key is the key, and NFC or NFD forms share it", () => {
    fc.assert(
      fc.property(fc.oneof(nickArb, roomArb), (name) => {
        const key = nickKey(name);
        expect(nickKey(key)).toBe(key);
        expect(nickKey(name.normalize("NFD"))).toBe(key);
        expect(nickKey(name.normalize("NFC"))).toBe(key);
        expect(nickKey(name)).toBe(key);
      }),
      { numRuns: 300 },
    );
  });

  it("ignores case: upper, lower and title case of a name collide", () => {
    fc.assert(
      fc.property(nickArb, (name) => {
        const key = nickKey(name);
        expect(nickKey(name.toUpperCase())).toBe(key);
        expect(nickKey(name.toLowerCase())).toBe(key);
        expect(nickKey(caseFold(name))).toBe(key);
      }),
      { numRuns: 300 },
    );
  });

  it("gives a look-alike free variant: firstFreeNick never hands out one of the taken keys", () => {
    const taken = new Set(["ann", "ann-2"].map(nickKey));
    expect(firstFreeNick("ａｎｎ", (k) => taken.has(k))).toBe("ａｎｎ-3");
    expect(firstFreeNick("\u0440\u0430\u0441\u0435", (k) => k === nickKey("pace"))).toBe(
      "\u0440\u0430\u0441\u0435-2",
    );
  });

  it("is quick enough for every join: 10,000 new names well under a second", () => {
    const start = performance.now();
    for (let i = 0; i < 10_000; i++) nickKey(`name-${i}-Ωμέγα`.slice(0, 5) + i.toString(36));
    expect(performance.now() - start).toBeLessThan(1000);
  });
});

describe("isWellFormed", () => {
  it("is false exactly when a string holds a lone surrogate", () => {
    for (const s of ["", "abc", "😀", "a😀b", "\ufffd", "\uffff"]) expect(isWellFormed(s)).toBe(true);
    for (const s of ["\ud800", "\udfff", "a\ud83d", "\ude00a", "\ude00\ud83d", "😀\ud83d"]) {
      expect(isWellFormed(s)).toBe(false);
    }
    fc.assert(
      fc.property(fc.string({ unit: anyCodePoint, maxLength: 30 }), (s) => {
        // What a UTF-8 round trip keeps unchanged is exactly what is well-formed.
        expect(isWellFormed(s)).toBe(new TextDecoder().decode(new TextEncoder().encode(s)) === s);
      }),
      { numRuns: 300 },
    );
  });
});
