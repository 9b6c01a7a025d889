/**
 * The local engine's v2 user claims: one claim per user and room, shared by the user's connections
 * (the first one logs the join, the last one the leave), and each user's session for the dedupe of
 * its message ids (never resumable, never written as a session row).
 */
import { nickKey, type PresenceEvent } from "../../../protocol";
import { type Claim, type EngineConn, NickTakenError, type RenameOutcome } from "../../chat/engine";
import type { LocalRoom } from "./local-room";
import { type LocalSession, sentKey } from "./local-sessions";
import type { LocalWriter } from "./local-writer";
import type { ChatStore } from "./store";

export interface LocalUserClaimsDeps<C extends EngineConn> {
  store: ChatStore;
  writer: LocalWriter<C>;
  now: () => number;
  dedupeWindow: number;
}

export class LocalUserClaims<C extends EngineConn> {
  private readonly sessions = new Map<string, LocalSession<C>>();
  /** `userId NUL room` whose recent message ids were read back from storage. */
  private readonly hydrated = new Set<string>();

  constructor(private readonly d: LocalUserClaimsDeps<C>) {}

  /** A connection joins its user's claim; the user's first connection in the room logs the join. */
  enter(room: LocalRoom<C>, connId: string, user: { userId: string; nick: string }): Claim {
    const held = room.userClaims.get(user.userId);
    if (held) {
      held.holders.add(connId);
      return { nick: held.nick, session: "", at: room.n };
    }
    const key = nickKey(user.nick);
    if (room.claims.has(key)) throw new NickTakenError(user.nick, room.name);
    room.claims.set(key, { connId: `u:${user.userId}`, nick: user.nick });
    room.userClaims.set(user.userId, { nick: user.nick, holders: new Set([connId]) });
    const event: PresenceEvent = { event: "join", nick: user.nick };
    const at = this.d.writer.append(room, { kind: "presence", event, at: this.d.now(), userId: user.userId });
    return { nick: user.nick, session: "", at };
  }

  /** The last of a v2 user's connections to leave logs the leave. */
  leave(room: LocalRoom<C>, connId: string, userId: string): void {
    const held = room.userClaims.get(userId);
    if (!held?.holders.delete(connId) || held.holders.size > 0) return;
    room.userClaims.delete(userId);
    room.claims.delete(nickKey(held.nick));
    const event: PresenceEvent = { event: "leave", nick: held.nick };
    this.d.writer.append(room, { kind: "presence", event, at: this.d.now(), userId });
  }

  /** Renames the user's claim (any of its connections may): one nick event. */
  rename(room: LocalRoom<C>, userId: string, nick: string): RenameOutcome {
    const held = room.userClaims.get(userId);
    if (!held) return "gone";
    const key = nickKey(held.nick);
    const newKey = nickKey(nick);
    if (newKey !== key && room.claims.has(newKey)) return "taken";
    if (held.nick === nick) return "ok";
    room.claims.delete(key);
    room.claims.set(newKey, { connId: `u:${userId}`, nick });
    const event: PresenceEvent = { event: "nick", from: held.nick, nick };
    held.nick = nick;
    this.d.writer.append(room, { kind: "presence", event, at: this.d.now(), userId });
    return "ok";
  }

  /** A v2 user's session: the ids its posts were sent with, for dedupe (read back from storage after a restart). */
  session(userId: string, room: string): LocalSession<C> {
    let session = this.sessions.get(userId);
    if (!session) {
      const sid = `u:${userId}`;
      session = { token: "", sid, client: "", room, nick: "", connId: null, endedAt: null, sent: new Map() };
      this.sessions.set(userId, session);
    }
    const hydrated = `${userId}\u0000${room}`;
    if (!this.hydrated.has(hydrated)) {
      // First post of this user in this room since the start: its recent ids come from storage.
      this.hydrated.add(hydrated);
      for (const [id, seq] of this.d.store
        .recentClientIds(session.sid, room, this.d.dedupeWindow)
        .reverse()) {
        session.sent.set(sentKey(room, id), { seq });
      }
    }
    return session;
  }
}
