/** Sessions behind resume tokens: the nickname to reclaim and the client references already stored. */
import type { ChatItem } from "./hub";

/** A message reference this session used: its seq, and the queued item while it waits for storage. */
export interface SentRef {
  seq: number;
  item?: ChatItem;
}

export interface Session<C> {
  /** The resume token itself: 192 random bits. */
  readonly id: string;
  room: string;
  nick: string;
  conn: C | null;
  endedAt: number | null;
  /** `room NUL id` -> where that message went; oldest first, bounded by the dedupe window. */
  readonly sent: Map<string, SentRef>;
}

export function sentKey(room: string, id: string): string {
  return `${room}\u0000${id}`;
}

/** Remembers a reference, forgetting the oldest past `window`. */
export function remember<C>(session: Session<C>, key: string, ref: SentRef, window: number): void {
  session.sent.delete(key);
  session.sent.set(key, ref);
  while (session.sent.size > window) {
    const oldest = session.sent.keys().next().value;
    if (oldest === undefined) break;
    session.sent.delete(oldest);
  }
}

export function randomToken(bytes = 24): string {
  const buf = new Uint8Array(bytes);
  crypto.getRandomValues(buf);
  let s = "";
  for (const b of buf) s += String.fromCharCode(b);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}
