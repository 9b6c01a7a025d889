/** Frame decoding for both directions: typed results, never a throw. */
import type { z } from "zod";
import { ClientMessage } from "./client-messages";
import type { ErrorCode } from "./codes";
import { LIMITS } from "./limits";
import { charCount, isWellFormed } from "./names";
import { ServerMessage } from "./server-messages";

export interface DecodeError {
  code: ErrorCode;
  message: string;
  /** The failing frame's own `id`, echoed back so a client can match the error. */
  id?: string;
}

export type Decoded<T> = { ok: true; value: T } | { ok: false; error: DecodeError };

type Frame = string | ArrayBuffer | ArrayBufferView;

const FIELD_CODES: Record<string, ErrorCode> = {
  nick: "nick_invalid",
  room: "room_invalid",
};

/** Typed text that is too long is too_large (v1's chat text, v2's topic and reason too); a long id is bad_message. */
const TYPED_TEXT = new Set(["text", "topic", "reason"]);

function issueCode(issue: z.core.$ZodIssue): ErrorCode {
  const own = (issue as { params?: { code?: ErrorCode } }).params?.code;
  if (own) return own;
  const field = issue.path[0];
  if (issue.code === "too_big" && typeof field === "string" && TYPED_TEXT.has(field)) return "too_large";
  // A name that is there but breaks its rule has its own code; a missing or mistyped one is bad_message.
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
  // A message may quote a key the client sent; what goes back must stay well-formed.
  return cut(`${where}${issue.message}`, 200);
}

function echoId(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const id = (value as { id?: unknown }).id;
  // Counted in characters (code points), as the schemas count them; never an ill-formed one.
  return typeof id === "string" && id.length >= 1 && charCount(id) <= LIMITS.idMax && isWellFormed(id)
    ? id
    : undefined;
}

/**
 * The first key or string value of `obj` that is not well-formed Unicode (a lone surrogate, which
 * JSON's `\ud800` escapes can carry). Only the top level: every field of a message is a scalar there,
 * so anything nested is refused by the schema anyway.
 */
function illFormedField(obj: object): string | undefined {
  for (const [key, value] of Object.entries(obj)) {
    if (!isWellFormed(key) || (typeof value === "string" && !isWellFormed(value))) return key;
  }
  return undefined;
}

function fail(code: ErrorCode, message: string, id?: string): { ok: false; error: DecodeError } {
  return { ok: false, error: id === undefined ? { code, message } : { code, message, id } };
}

/**
 * One frame against `schema`: binary, JSON, an object with a string `type`, lone surrogates (when
 * `wellFormed`: frames from clients), then the schema; a typed result, never a throw. Both protocol
 * versions decode through it.
 */
export function decodeWith<S extends z.ZodType>(
  schema: S,
  frame: Frame,
  wellFormed: boolean,
  fast?: (parsed: object) => z.infer<S> | undefined,
): Decoded<z.infer<S>> {
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
  // The frame's own text is well-formed (a WebSocket checks its UTF-8), so a lone surrogate can only
  // come from a `\u` escape: without one, the fields need no look.
  if (wellFormed && (frame.includes("\\u") || !isWellFormed(frame))) {
    const field = illFormedField(parsed);
    if (field !== undefined) {
      const where = isWellFormed(field) ? `${cut(field, 40)}: ` : "";
      return fail("bad_message", `${where}strings must be well-formed Unicode (no lone surrogate)`, id);
    }
  }
  // The common frame checked by hand (equal to the schema, a property test says); anything else, or
  // anything the fast path does not accept, goes to the schema, which also words the errors.
  const quick = fast?.(parsed);
  if (quick !== undefined) return { ok: true, value: quick };
  const result = schema.safeParse(parsed);
  if (result.success) return { ok: true, value: result.data };
  const issue = result.error.issues[0];
  if (!issue) return fail("bad_message", "message does not match the protocol", id);
  return fail(issueCode(issue), describe(issue), id);
}

/**
 * Decodes one frame a client sent. Every string in it must be well-formed Unicode: a lone surrogate
 * in any field (text, id, nick, room, even a key) makes it bad_message, so it is never stored.
 */
export function decodeClientMessage(frame: Frame): Decoded<ClientMessage> {
  return decodeWith(ClientMessage, frame, true, fastChat);
}

/**
 * A valid v1 `chat` frame, checked without the schema, or undefined (then the schema decides).
 * Runs after the well-formedness check, so its strings hold no lone surrogate.
 */
export function fastChat(parsed: object): ClientMessage | undefined {
  const m = parsed as { type?: unknown; text?: unknown; id?: unknown };
  if (m.type !== "chat") return undefined;
  const { text, id } = m;
  if (typeof text !== "string" || text.length > LIMITS.textMax * 2) return undefined;
  if (text.length > LIMITS.textMax && charCount(text) > LIMITS.textMax) return undefined;
  if (id !== undefined && (typeof id !== "string" || id.length < 1 || id.length > LIMITS.idMax))
    return undefined;
  // `type` and `text` are there, and `id` when defined: any other key makes one too many.
  if (Object.keys(parsed).length !== (id === undefined ? 2 : 3) || text.trim().length === 0) return undefined;
  return id === undefined ? { type: "chat", text } : { type: "chat", text, id };
}

/** Decodes one frame a server sent; a client reports a failure rather than trusting the frame. */
export function decodeServerMessage(frame: Frame): Decoded<ServerMessage> {
  return decodeWith(ServerMessage, frame, false);
}

/** The one encoding of every message in both directions. */
export function encode(message: ClientMessage | ServerMessage): string {
  return JSON.stringify(message);
}
