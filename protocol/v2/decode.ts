/** Frame decoding of v2, both directions, through v1's steps: the same result shape and error codes. */
import { type Decoded, decodeWith, encode } from "../decode";
import { ClientMessageV2 } from "./client-messages";
import { ServerMessageV2 } from "./server-messages";

type Frame = string | ArrayBuffer | ArrayBufferView;

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
