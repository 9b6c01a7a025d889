/**
 * The local engine's sessions behind resume tokens: the nickname a token reclaims, in which room,
 * the client references already stored (dedupe), and which changes still have to be written.
 */
import { nickKey } from "../../../protocol";
import { randomToken } from "../../chat/tokens";
import type { ChatStore, SessionRecord, StoredMessage } from "./store";

/** A queued chat waiting for its commit; retries of its id wait with it. */
export interface PendingChat<C> {
  msg: StoredMessage;
  from: C;
  id: string | undefined;
  dupes: C[];
  /** Its session and dedupe key (`sentKey`), kept so settling it needs no lookup. */
  session: LocalSession<C>;
  key: string | undefined;
}

/** A message reference this session used: its seq, and the queued chat while it waits for storage. */
export interface SentRef<C> {
  seq: number;
  pending?: PendingChat<C> | undefined;
}

export interface LocalSession<C> {
  /** The resume token itself: 192 random bits. */
  readonly id: string;
  room: string;
  nick: string;
  /** The connection that holds it now, if any. */
  connId: string | null;
  endedAt: number | null;
  /** `room NUL id` -> where that message went; oldest first, bounded by the dedupe window. */
  readonly sent: Map<string, SentRef<C>>;
}

export function sentKey(room: string, id: string): string {
  return `${room}\u0000${id}`;
}

export class LocalSessions<C> {
  private readonly byId = new Map<string, LocalSession<C>>();
  /** Changed since the last write. */
  readonly dirty = new Set<LocalSession<C>>();

  constructor(
    private readonly store: ChatStore,
    private readonly window: number,
    private readonly resumeTtlMs: number,
  ) {}

  get(id: string): LocalSession<C> | undefined {
    return this.byId.get(id);
  }

  create(room: string): LocalSession<C> {
    const session: LocalSession<C> = {
      id: randomToken(),
      room,
      nick: "",
      connId: null,
      endedAt: null,
      sent: new Map(),
    };
    this.byId.set(session.id, session);
    return session;
  }

  /** The session behind `token` if it may be resumed in `room` now (from storage after a restart). */
  resumable(token: string, room: string, now: number, fixedNick?: string): LocalSession<C> | undefined {
    let session = this.byId.get(token);
    if (!session) {
      const record = this.store.loadSession(token);
      if (!record) return undefined;
      session = { ...record, endedAt: record.endedAt ?? now, connId: null, sent: new Map() };
      const ids = this.store.recentClientIds(token, record.room, this.window);
      for (let i = ids.length - 1; i >= 0; i--) {
        const [id, seq] = ids[i] as [string, number];
        session.sent.set(sentKey(record.room, id), { seq });
      }
      this.byId.set(token, session);
    }
    if (session.room !== room) return undefined;
    if (session.connId === null && now - (session.endedAt ?? 0) > this.resumeTtlMs) return undefined;
    if (fixedNick !== undefined && nickKey(session.nick) !== nickKey(fixedNick)) return undefined;
    return session;
  }

  track(session: LocalSession<C>, room: string, nick: string): void {
    session.room = room;
    session.nick = nick;
    this.dirty.add(session);
  }

  end(session: LocalSession<C>, now: number): void {
    session.connId = null;
    session.endedAt = now;
    this.dirty.add(session);
  }

  /** Remembers a reference, forgetting the oldest past the window. */
  remember(session: LocalSession<C>, key: string, ref: SentRef<C>): void {
    session.sent.delete(key);
    session.sent.set(key, ref);
    while (session.sent.size > this.window) {
      const oldest = session.sent.keys().next().value;
      if (oldest === undefined) break;
      session.sent.delete(oldest);
    }
  }

  /** Forgets sessions whose resume window has passed. */
  sweep(cutoff: number): void {
    for (const [id, s] of this.byId) {
      if (s.connId === null && s.endedAt !== null && s.endedAt < cutoff && !this.dirty.has(s)) {
        this.byId.delete(id);
      }
    }
    this.store.dropSessions(cutoff);
  }
}

export function toRecord<C>(s: LocalSession<C>): SessionRecord {
  return { id: s.id, room: s.room, nick: s.nick, endedAt: s.endedAt };
}
