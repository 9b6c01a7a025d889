/**
 * What `send` returns in both clients: a promise of the message's ack that also shows the message's
 * state while it waits. Nobody has to await it: a send whose promise is ignored never becomes an
 * unhandled rejection (its failure is still the `error` event and the message's state).
 */
import type { ChatError } from "./chat-error";

/** The server stored the message: its id, its room and the seq everyone sees it under. */
export interface Acked {
  id: string;
  room: string;
  seq: number;
}

export type SendState = "sending" | "sent" | "failed";

/** A sent message as its sender follows it; `send` returns one. */
export interface SendStatus {
  readonly id: string;
  readonly room: string;
  readonly text: string;
  /** `sending` until the server acks it (`sent`) or it fails (`failed`, with `error`). */
  readonly state: SendState;
  /** The room's seq, once acked. */
  readonly seq?: number | undefined;
  readonly error?: ChatError | undefined;
}

/**
 * Resolves with the ack, rejects with the ChatError that failed the message. Its fields follow the
 * message as it goes (a `retry` puts a failed one back to `sending`; the retry returns a new promise).
 */
export interface Sending extends Promise<Acked>, SendStatus {}

/** A promise for one send and the two functions that settle it (each settles it at most once). */
export interface SendSettler {
  sending: Sending;
  resolve(ack: Acked): void;
  reject(error: ChatError): void;
}

const FIELDS = ["id", "room", "text", "state", "seq", "error"] as const;

/** A Sending whose fields read `status` live. */
export function sendingOf(status: SendStatus): SendSettler {
  let resolve!: (ack: Acked) => void;
  let reject!: (error: ChatError) => void;
  const promise = new Promise<Acked>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  for (const field of FIELDS) {
    Object.defineProperty(promise, field, { get: () => status[field], enumerable: true });
  }
  return { sending: promise as Sending, resolve, reject };
}
