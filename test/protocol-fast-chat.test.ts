/**
 * The hand-written fast path for v1's `chat` frame decodes exactly as the zod schema does: the same
 * result (value or error) for valid frames, near misses, and arbitrary JSON.
 */
import { describe, expect, it } from "bun:test";
import fc from "fast-check";
import { ClientMessage, decodeClientMessage, decodeWith, fastChat, LIMITS } from "../protocol";

const bySchema = (frame: string) => decodeWith(ClientMessage, frame, true);

/** Texts around every rule: empty, blank, astral, lone surrogates, at and past the limit. */
const text = fc.oneof(
  fc.string(),
  fc.string({ unit: "grapheme", maxLength: 50 }),
  fc.constantFrom(
    "",
    " ",
    "\t\n",
    "a",
    "\u00a0",
    "\ud83d\ude00",
    "x".repeat(LIMITS.textMax),
    "x".repeat(LIMITS.textMax + 1),
  ),
  fc.constantFrom("😀".repeat(LIMITS.textMax), "😀".repeat(LIMITS.textMax + 1), "\u3000", "a\ud800b"),
  fc.nat({ max: 10 }).map((n) => "é".repeat(LIMITS.textMax - 5 + n)),
);
const id = fc.oneof(
  fc.constant(undefined),
  fc.string({ maxLength: 70 }),
  fc.constantFrom("", "x".repeat(LIMITS.idMax), "x".repeat(LIMITS.idMax + 1), "😀".repeat(33)),
  fc.constantFrom(null, 1, true, [], {}),
);
const extra = fc.option(
  fc.constantFrom<[string, unknown]>(["room", "a"], ["nick", "b"], ["ID", "x"], ["text ", "y"]),
);

const chatLike = fc.record({
  text: fc.oneof(text, fc.constantFrom(null, 5, [], {})),
  id,
  extra,
  type: fc.constantFrom("chat", "chat", "Chat", "nick"),
});

function frameOf(c: { text: unknown; id: unknown; extra: [string, unknown] | null; type: string }): string {
  const obj: Record<string, unknown> = { type: c.type, text: c.text };
  if (c.id !== undefined) obj.id = c.id;
  if (c.extra) obj[c.extra[0]] = c.extra[1];
  return JSON.stringify(obj);
}

describe("the fast path of chat frames", () => {
  it("decodes every chat-like frame as the schema does", () => {
    fc.assert(
      fc.property(chatLike, (c) => {
        const frame = frameOf(c);
        expect(decodeClientMessage(frame)).toEqual(bySchema(frame));
      }),
      { numRuns: 5000 },
    );
  });

  it("decodes arbitrary JSON and escaped frames as the schema does", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.json(),
          fc.jsonValue().map((v) => JSON.stringify({ type: "chat", text: v })),
        ),
        (frame) => {
          expect(decodeClientMessage(frame)).toEqual(bySchema(frame));
        },
      ),
      { numRuns: 3000 },
    );
    for (const frame of [
      '{"type":"chat","text":"\\ud800"}',
      '{"type":"chat","text":"ok","id":"\\udfff"}',
      '{"type":"chat","text":"a","text":"b"}',
    ]) {
      expect(decodeClientMessage(frame)).toEqual(bySchema(frame));
    }
  });

  it("takes the common frames itself, without the schema", () => {
    for (const frame of [
      '{"type":"chat","text":"hello","id":"m1"}',
      '{"id":"x","text":"hi there","type":"chat"}',
    ]) {
      expect(fastChat(JSON.parse(frame))).toEqual(JSON.parse(frame));
    }
    expect(fastChat({ type: "chat", text: "   " })).toBeUndefined();
  });
});
