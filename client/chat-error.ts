/**
 * The one error type of both clients: every refusal (the server's or the client's own, with the
 * protocol's codes), every lost request and every frame the client could not read is a ChatError,
 * emitted as the `error` event and, when a promise waits on it (`send`, `ready`, v2's `join`), its
 * rejection. Plain TS with type-only protocol imports, so the v2 bundle stays free of zod.
 */
import type { ErrorCodeV2 } from "../protocol/v2/codes";

/**
 * The protocol's error codes (shared/PROTOCOL.md, v1 and v2), and the client's own:
 * - `offline`: asked for while not connected (v2 requests other than `send`, which wait);
 * - `unconfirmed`: the connection was lost before the server answered, and the server could not
 *   tell afterwards whether it took the request (v1: a session not resumed; v2: `join`, `part`, `dm`);
 * - `left_room`: a v1 message written in a room the client has left since;
 * - `identity_lost`: the stored v2 identity was refused or revoked; the client is a new user now;
 * - `invalid_frame`: the server sent a frame that does not check (`cause` says why); it was dropped;
 * - `closed`: the client was closed (`close()`), replaced (v1: 4001) or refused for good;
 * - `discarded`: the message was discarded (`discard`) before its ack;
 * - `aborted`: the `signal` given to `ready` was aborted (`cause` holds its reason).
 */
export type ChatErrorCode =
  | ErrorCodeV2
  | "offline"
  | "unconfirmed"
  | "left_room"
  | "identity_lost"
  | "invalid_frame"
  | "closed"
  | "discarded"
  | "aborted";

export interface ChatErrorDetails {
  /** The id of the request it answers (a sent message's id). */
  id?: string | undefined;
  room?: string | undefined;
  cause?: unknown;
}

export class ChatError extends Error {
  override readonly name = "ChatError";
  readonly code: ChatErrorCode;
  /** The id of the request it answers (a sent message's id), when there is one. */
  readonly id: string | undefined;
  /** The room it is about, when there is one. */
  readonly room: string | undefined;

  constructor(code: ChatErrorCode, message: string, details: ChatErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.id = details.id;
    this.room = details.room;
  }
}
