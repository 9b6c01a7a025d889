/** Messages a person sent, each with its own id and a visible state until the server acks or refuses it. */
import type { ChatError } from "./chat-error";
import type { SendState } from "./sending";

export type OutboxState = SendState;

/**
 * Why a message failed: the server's error code, or the client's own (`unconfirmed`: sent, then the
 * session was lost before an ack; `left_room`: written in a room since left).
 */
export type OutboxFailure = ChatError;

export interface OutboxEntry {
  /** The `id` the chat frame carries; the server dedupes on it within a session. */
  readonly id: string;
  readonly room: string;
  readonly text: string;
  state: OutboxState;
  /** Times the frame was written to a socket. */
  attempts: number;
  /** The room's seq once acked. */
  seq?: number;
  error?: OutboxFailure;
}

export class Outbox {
  /** Entries not yet acked (sending or failed), oldest first. */
  private readonly open = new Map<string, OutboxEntry>();
  private counter = 0;

  constructor(private readonly prefix: string = randomPrefix()) {}

  add(room: string, text: string): OutboxEntry {
    const entry: OutboxEntry = {
      id: `${this.prefix}.${++this.counter}`,
      room,
      text,
      state: "sending",
      attempts: 0,
    };
    this.open.set(entry.id, entry);
    return entry;
  }

  get(id: string): OutboxEntry | undefined {
    return this.open.get(id);
  }

  /** Entries waiting to go out, oldest first. */
  sending(): OutboxEntry[] {
    return [...this.open.values()].filter((e) => e.state === "sending");
  }

  /** Every entry not yet acked, oldest first. */
  unsettled(): OutboxEntry[] {
    return [...this.open.values()];
  }

  /** Marks an entry sent and forgets it; undefined for an id this outbox does not hold. */
  acked(id: string, seq: number): OutboxEntry | undefined {
    const entry = this.open.get(id);
    if (!entry) return undefined;
    this.open.delete(id);
    entry.state = "sent";
    entry.seq = seq;
    delete entry.error;
    return entry;
  }

  failed(id: string, error: OutboxFailure): OutboxEntry | undefined {
    const entry = this.open.get(id);
    if (!entry) return undefined;
    entry.state = "failed";
    entry.error = error;
    return entry;
  }

  /** Puts a failed entry back in line, keeping its id so the server can still dedupe it. */
  retry(id: string): OutboxEntry | undefined {
    const entry = this.open.get(id);
    if (entry?.state !== "failed") return undefined;
    entry.state = "sending";
    delete entry.error;
    return entry;
  }

  discard(id: string): boolean {
    return this.open.delete(id);
  }
}

/** 72 random bits, base64url: ids from different page loads never collide within a session. */
function randomPrefix(): string {
  const bytes = new Uint8Array(9);
  crypto.getRandomValues(bytes);
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_");
}
