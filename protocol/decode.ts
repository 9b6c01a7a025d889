/** Frame decoding for both directions: typed results, never a throw. */
import type { z } from "zod";
import { ClientMessage } from "./client-messages";
import type { ErrorCode } from "./codes";
import { LIMITS } from "./limits";
import { charCount } from "./names";
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

function issueCode(issue: z.core.$ZodIssue): ErrorCode {
  const own = (issue as { params?: { code?: ErrorCode } }).params?.code;
  if (own) return own;
  const field = issue.path[0];
  if (issue.code === "too_big" && field === "text") return "too_large";
  // A name that is there but breaks its rule has its own code; a missing or mistyped one is bad_message.
  const judged = issue.code !== "unrecognized_keys" && issue.code !== "invalid_type";
  if (typeof field === "string" && judged && FIELD_CODES[field]) {
    return FIELD_CODES[field];
  }
  return "bad_message";
}

function describe(issue: z.core.$ZodIssue): string {
  const where = issue.path.length ? `${issue.path.join(".")}: ` : "";
  return `${where}${issue.message}`.slice(0, 200);
}

function echoId(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const id = (value as { id?: unknown }).id;
  // Counted in characters (code points), as the schemas count them.
  return typeof id === "string" && id.length >= 1 && charCount(id) <= LIMITS.idMax ? id : undefined;
}

function fail(code: ErrorCode, message: string, id?: string): { ok: false; error: DecodeError } {
  return { ok: false, error: id === undefined ? { code, message } : { code, message, id } };
}

function decodeWith<S extends z.ZodType>(schema: S, frame: Frame): Decoded<z.infer<S>> {
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
  const result = schema.safeParse(parsed);
  if (result.success) return { ok: true, value: result.data };
  const issue = result.error.issues[0];
  if (!issue) return fail("bad_message", "message does not match the protocol", id);
  return fail(issueCode(issue), describe(issue), id);
}

/** Decodes one frame a client sent. */
export function decodeClientMessage(frame: Frame): Decoded<ClientMessage> {
  return decodeWith(ClientMessage, frame);
}

/** Decodes one frame a server sent; a client reports a failure rather than trusting the frame. */
export function decodeServerMessage(frame: Frame): Decoded<ServerMessage> {
  return decodeWith(ServerMessage, frame);
}

/** The one encoding of every message in both directions. */
export function encode(message: ClientMessage | ServerMessage): string {
  return JSON.stringify(message);
}
