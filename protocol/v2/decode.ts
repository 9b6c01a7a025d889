/**
 * Frame decoding of v2, both directions: typed results, never a throw, with the result shape and the
 * error codes of v1's decoders. protocol/decode.ts keeps its frame checks private, so the steps are
 * repeated here in the same order (binary, JSON, object with a string `type`, lone surrogates, schema);
 * were decode.ts to export its `decodeWith`, this file would shrink to the two calls.
 */
import type { z } from "zod";
import type { ErrorCode } from "../codes";
import { type Decoded, type DecodeError, encode } from "../decode";
import { LIMITS } from "../limits";
import { charCount, isWellFormed } from "../names";
import { ClientMessageV2 } from "./client-messages";
import { ServerMessageV2 } from "./server-messages";

type Frame = string | ArrayBuffer | ArrayBufferView;

/** Fields whose broken rule has its own code (when present and of the right type), as in v1. */
const FIELD_CODES: Record<string, ErrorCode> = {
  nick: "nick_invalid",
  room: "room_invalid",
};

/** Typed text that is too long is too_large, as v1's chat text; a long id or emoji is bad_message. */
const TYPED_TEXT = new Set(["text", "topic", "reason"]);

function issueCode(issue: z.core.$ZodIssue): ErrorCode {
  const own = (issue as { params?: { code?: ErrorCode } }).params?.code;
  if (own) return own;
  const field = issue.path[0];
  if (issue.code === "too_big" && typeof field === "string" && TYPED_TEXT.has(field)) return "too_large";
  const judged = issue.code !== "unrecognized_keys" && issue.code !== "invalid_type";
  if (typeof field === "string" && judged && FIELD_CODES[field]) {
    return FIELD_CODES[field];
  }
  return "bad_message";
}

/** The first `max` UTF-16 units of `s`, one fewer rather than half a surrogate pair. */
function cut(s: string, max: number): string {
  if (s.length <= max) return s;
  const last = s.charCodeAt(max - 1);
  return s.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
}

function describe(issue: z.core.$ZodIssue): string {
  const where = issue.path.length ? `${issue.path.join(".")}: ` : "";
  return cut(`${where}${issue.message}`, 200);
}

function echoId(value: object): string | undefined {
  const id = (value as { id?: unknown }).id;
  return typeof id === "string" && id.length >= 1 && charCount(id) <= LIMITS.idMax && isWellFormed(id)
    ? id
    : undefined;
}

/** The first top-level key or string value that is not well-formed; every v2 request is flat. */
function illFormedField(obj: object): string | undefined {
  for (const [key, value] of Object.entries(obj)) {
    if (!isWellFormed(key) || (typeof value === "string" && !isWellFormed(value))) return key;
  }
  return undefined;
}

function fail(code: ErrorCode, message: string, id?: string): { ok: false; error: DecodeError } {
  return { ok: false, error: id === undefined ? { code, message } : { code, message, id } };
}

function decodeWith<S extends z.ZodType>(schema: S, frame: Frame, wellFormed: boolean): Decoded<z.infer<S>> {
  if (typeof frame !== "string") return fail("bad_frame", "binary frames are not accepted; send JSON text");
  let parsed: unknown;
  try {
    parsed = JSON.parse(frame);
  } catch {
    return fail("bad_json", "frame is not valid JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return fail("bad_message", "frame must be a JSON object with a string field `type`");
  }
  const id = echoId(parsed);
  if (typeof (parsed as { type?: unknown }).type !== "string") {
    return fail("bad_message", "frame must have a string field `type`", id);
  }
  if (wellFormed) {
    const field = illFormedField(parsed);
    if (field !== undefined) {
      const where = isWellFormed(field) ? `${cut(field, 40)}: ` : "";
      return fail("bad_message", `${where}strings must be well-formed Unicode (no lone surrogate)`, id);
    }
  }
  const result = schema.safeParse(parsed);
  if (result.success) return { ok: true, value: result.data };
  const issue = result.error.issues[0];
  if (!issue) return fail("bad_message", "message does not match the protocol", id);
  return fail(issueCode(issue), describe(issue), id);
}

/**
 * Decodes one frame a v2 client sent. As in v1, a lone surrogate anywhere (a value or a key) is
 * bad_message, a broken room is room_invalid, a broken nick nick_invalid, a text, topic or reason
 * over its length too_large; `not_found` and `forbidden` are the server's to answer, not the decoder's.
 */
export function decodeClientMessageV2(frame: Frame): Decoded<ClientMessageV2> {
  return decodeWith(ClientMessageV2, frame, true);
}

/** Decodes one frame a v2 server sent; a client reports a failure rather than trusting the frame. */
export function decodeServerMessageV2(frame: Frame): Decoded<ServerMessageV2> {
  return decodeWith(ServerMessageV2, frame, false);
}

/** v1's encode, whose signature names only v1's messages: one encoding (JSON) for every message. */
const encodeAny = encode as (message: unknown) => string;

/** The one encoding of every v2 message, in both directions: v1's. */
export function encodeV2(message: ClientMessageV2 | ServerMessageV2): string {
  return encodeAny(message);
}
