/**
 * The local engine's sessions behind resume tokens: the nickname a token reclaims, in which room,
 * the client references already stored (dedupe), and which changes still have to be written.
 */
import { nickKey } from "../../../protocol";
import { newTokenPart, sidOf, tokenOf } from "../../chat/tokens";
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
  /**
   * The resume token: `SID.SECRET`. The SID part (128 random bits) names the session for good and
   * is what its stored messages carry; the secret part (128 bits) changes on every resume, so a
   * token seen once (in a URL, a proxy's log) stops working as soon as its owner comes back.
   */
  token: string;
  readonly sid: string;
  /** The client address that made it, for the per-address cap. */
  readonly client: string;
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

export interface SessionLimits {
  window: number;
  resumeTtlMs: number;
  /** Resumable sessions one client address may hold; the oldest ended ones go first. */
  maxPerClient: number;
}

export class LocalSessions<C> {
  private readonly byToken = new Map<string, LocalSession<C>>();
  /** Sessions by their stable id: a token whose session lives on under a newer token is dead. */
  private readonly bySid = new Map<string, LocalSession<C>>();
  /** Per client address, its sessions in the order they were made. */
  private readonly byClient = new Map<string, Set<LocalSession<C>>>();
  /** Changed since the last write. */
  readonly dirty = new Set<LocalSession<C>>();
  /** Tokens that no longer work (rotated or evicted), written as expired at the next write. */
  private retired: SessionRecord[] = [];

  constructor(
    private readonly store: ChatStore,
    private readonly limits: SessionLimits,
  ) {}

  get(token: string): LocalSession<C> | undefined {
    return this.byToken.get(token);
  }

  /** Changes waiting to be written. */
  get pending(): number {
    return this.dirty.size + this.retired.length;
  }

  create(room: string, client: string): LocalSession<C> {
    const sid = newTokenPart();
    const session: LocalSession<C> = {
      token: tokenOf(sid, newTokenPart()),
      sid,
      client,
      room,
      nick: "",
      connId: null,
      endedAt: null,
      sent: new Map(),
    };
    this.byToken.set(session.token, session);
    this.bySid.set(sid, session);
    this.track(session, room, "");
    this.admit(session);
    return session;
  }

  /** A new secret for a resumed session: the token it was resumed with stops working. */
  rotate(session: LocalSession<C>): void {
    this.byToken.delete(session.token);
    this.retire(session.token, session);
    session.token = tokenOf(session.sid, newTokenPart());
    this.byToken.set(session.token, session);
    this.dirty.add(session);
  }

  /** The session behind `token` if it may be resumed in `room` now (from storage after a restart). */
  resumable(token: string, room: string, now: number, fixedNick?: string): LocalSession<C> | undefined {
    let session = this.byToken.get(token);
    if (!session) {
      if (this.bySid.has(sidOf(token)) || this.retired.some((r) => r.id === token)) return undefined;
      const record = this.store.loadSession(token);
      if (!record) return undefined;
      const sid = sidOf(token);
      session = {
        token,
        sid,
        client: "",
        room: record.room,
        nick: record.nick,
        endedAt: record.endedAt ?? now,
        connId: null,
        sent: new Map(),
      };
      const ids = this.store.recentClientIds(sid, record.room, this.limits.window);
      for (let i = ids.length - 1; i >= 0; i--) {
        const [id, seq] = ids[i] as [string, number];
        session.sent.set(sentKey(record.room, id), { seq });
      }
      this.byToken.set(token, session);
      this.bySid.set(sid, session);
    }
    if (session.room !== room) return undefined;
    if (session.connId === null && now - (session.endedAt ?? 0) > this.limits.resumeTtlMs) return undefined;
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
    while (session.sent.size > this.limits.window) {
      const oldest = session.sent.keys().next().value;
      if (oldest === undefined) break;
      session.sent.delete(oldest);
    }
  }

  /** What to write now, and a call to make once it is written. */
  take(): { records: SessionRecord[]; written: () => void } {
    const sessions = [...this.dirty];
    const retired = this.retired;
    return {
      records: [...retired, ...sessions.map(toRecord)],
      written: () => {
        for (const s of sessions) this.dirty.delete(s);
        this.retired = this.retired.filter((r) => !retired.includes(r));
      },
    };
  }

  /** Forgets sessions whose resume window has passed. */
  sweep(cutoff: number): void {
    for (const [token, s] of this.byToken) {
      if (s.connId === null && s.endedAt !== null && s.endedAt < cutoff && !this.dirty.has(s)) {
        this.byToken.delete(token);
        this.bySid.delete(s.sid);
        this.byClient.get(s.client)?.delete(s);
      }
    }
    for (const [client, set] of this.byClient) if (set.size === 0) this.byClient.delete(client);
    this.store.dropSessions(cutoff);
  }

  /** Counts the session against its client's cap, forgetting that client's oldest ended session past it. */
  private admit(session: LocalSession<C>): void {
    let set = this.byClient.get(session.client);
    if (!set) {
      set = new Set();
      this.byClient.set(session.client, set);
    }
    set.add(session);
    if (set.size <= this.limits.maxPerClient) return;
    for (const old of set) {
      if (old.connId !== null || old === session) continue;
      set.delete(old);
      this.byToken.delete(old.token);
      this.bySid.delete(old.sid);
      this.dirty.delete(old);
      this.retire(old.token, old);
      return;
    }
  }

  /** The token stops working: it is written as a session that ended at the epoch (long expired). */
  private retire(token: string, s: LocalSession<C>): void {
    this.retired.push({ id: token, room: s.room, nick: s.nick, endedAt: 0 });
  }
}

export function toRecord<C>(s: LocalSession<C>): SessionRecord {
  return { id: s.token, room: s.room, nick: s.nick, endedAt: s.endedAt };
}
