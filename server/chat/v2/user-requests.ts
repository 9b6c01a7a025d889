/**
 * What a v2 connection asks of its user's rooms: join, part, dm, read and nick change the user (and
 * reach every connection of it, through the user's events); chat, sync, history, who and typing act
 * in one room. Every refusal is a typed error carrying the request's id, and changes nothing.
 */
import { type ErrorCode, LIMITS, nickKey, v2 } from "../../../protocol";
import type { ClientBudgets } from "../client-budgets";
import type { Connection } from "../connection";
import type { Connections } from "../connections";
import type { Engine, EngineConn, Page } from "../engine";
import type { ChatLimits } from "../limits";
import { describeError, type Logger } from "../log";
import { findMentions, toFolded } from "../posts";
import type { Replica } from "../replica";
import type { Replicas } from "../replicas";
import type { UserStore } from "../users";
import type { UserConn } from "./user-conn";

type Req = v2.ClientMessageV2;
type V2Error = ErrorCode | "not_found";

export interface UserRequestsDeps {
  engine: Engine<EngineConn>;
  users: UserStore;
  replicas: Replicas;
  connections: Connections;
  budgets: ClientBudgets;
  limits: ChatLimits;
  log: Logger;
  now: () => number;
  unblock: (conn: Connection) => void;
}

export class UserRequests {
  constructor(private readonly d: UserRequestsDeps) {}

  fail(conn: Connection, code: V2Error, message: string, id: string | undefined): void {
    this.d.connections.fail(conn, code as ErrorCode, message, id);
  }

  /** The membership a room request names, or `not_found` answered. */
  member(conn: Connection, room: string, id: string | undefined): Connection | undefined {
    const member = conn.v2?.rooms.get(room);
    if (member?.state === "live" && member.replica) return member;
    this.fail(conn, "not_found", `you are not in ${room}`, id);
    return undefined;
  }

  chat(conn: Connection, msg: Req & { type: "chat" }): void {
    const member = this.member(conn, msg.room, msg.id);
    if (!member) return;
    const replica = member.replica as Replica<Connection>;
    if (msg.replyTo !== undefined && msg.replyTo > replica.lastSeq) {
      this.fail(conn, "not_found", `there is no post ${msg.replyTo} in ${msg.room}`, msg.id);
      return;
    }
    const user = conn.v2 as UserConn;
    const found = findMentions(msg.text, replica.users, replica.owners, user.userId);
    this.d.engine.chat(member, msg.room, msg.text, msg.id, {
      userId: user.userId,
      kind: msg.kind,
      replyTo: msg.replyTo,
      mentions: found.nicks.length > 0 ? found.nicks : undefined,
      mentionIds: found.ids.length > 0 ? found.ids : undefined,
    });
  }

  /**
   * Posts after `since` (the newest 500 of them) and changes after `sinceRev` (the first 500), as of
   * the room's position when the answer goes: what follows it in the stream is newer. Changes come
   * from the engine; if the room moved while it answered, it is asked again (bounded).
   */
  sync(conn: Connection, msg: Req & { type: "sync" }, tries = 3): void {
    const member = this.member(conn, msg.room, msg.id);
    if (!member) return;
    const replica = member.replica as Replica<Connection>;
    const upTo = replica.lastRev;
    const limit = v2.LIMITS_V2.syncMax;
    this.d.engine.changes(replica.name, Math.min(msg.sinceRev, upTo), upTo, limit, (err, changes) => {
      if (conn.state === "closed" || member.state === "closed") return;
      if (err !== undefined && err !== null) return this.readFailed(conn, err, msg.id);
      if (replica.lastRev !== upTo && tries > 1) return this.sync(conn, msg, tries - 1);
      let page: Page;
      try {
        const pages = this.d.engine.pages;
        page = pages ? pages.page(replica.name, msg.since, replica.lastSeq) : replica.after(msg.since, limit);
      } catch (pErr) {
        return this.readFailed(conn, pErr, msg.id);
      }
      const data = JSON.stringify({
        type: "sync",
        room: replica.name,
        posts: page.messages.map(toFolded),
        changes: changes?.changes ?? [],
        truncated: page.more || (changes?.more ?? false),
      });
      this.d.budgets.chargeHistory(conn, data.length, this.d.now());
      this.d.connections.sendRaw(conn, data);
    });
  }

  private readFailed(conn: Connection, err: unknown, id: string | undefined): void {
    this.d.log.log("error", "sync_failed", { conn: conn.id, ...describeError(err) });
    this.fail(conn, "internal", "could not read the room's history; try again", id);
  }

  history(conn: Connection, msg: Req & { type: "history" }): void {
    const { budgets, connections, limits, now } = this.d;
    if (!this.member(conn, msg.room, msg.id)) return;
    if (conn.peer.bufferedAmount() > limits.slowConsumerBytes / 4) {
      this.fail(conn, "rate_limited", "read what was sent to you before asking for more history", msg.id);
      return;
    }
    if (!budgets.mayReadHistory(conn, now())) {
      this.fail(conn, "rate_limited", "too much history from your address; try again in a moment", msg.id);
      return;
    }
    const limit = msg.limit ?? LIMITS.historyDefault;
    this.d.engine.history(msg.room, msg.before ?? Number.MAX_SAFE_INTEGER, limit, (err, page) => {
      if (conn.state === "closed") return;
      if (err !== undefined && err !== null) {
        this.d.log.log("error", "history_failed", { room: msg.room, ...describeError(err) });
        this.fail(conn, "internal", "could not read the room's history; try again", msg.id);
        return;
      }
      if (!page) return;
      const data = JSON.stringify({
        type: "history",
        room: msg.room,
        messages: page.messages.map(toFolded),
        hasMore: page.more,
      });
      budgets.chargeHistory(conn, data.length, now());
      connections.sendRaw(conn, data);
    });
  }

  who(conn: Connection, msg: Req & { type: "who" }): void {
    const member = this.member(conn, msg.room, msg.id);
    if (!member) return;
    const replica = member.replica as Replica<Connection>;
    this.d.connections.send(conn, { type: "users", room: replica.name, users: replica.sortedUsers() });
  }

  typing(conn: Connection, msg: Req & { type: "typing" }): void {
    const member = this.member(conn, msg.room, msg.id);
    if (!member) return;
    const now = this.d.now();
    if (now - member.lastTypingAt < LIMITS.typingIntervalMs) return;
    member.lastTypingAt = now;
    const user = conn.v2 as UserConn;
    this.d.engine.typing(
      member,
      msg.room,
      JSON.stringify({ type: "typing", room: msg.room, nick: user.nick }),
    );
  }

  /** Moves the user's marker forward (clamped to the room's newest post); all its connections hear it. */
  read(conn: Connection, msg: Req & { type: "read" }): void {
    const member = this.member(conn, msg.room, msg.id);
    if (!member) return;
    const replica = member.replica as Replica<Connection>;
    const user = conn.v2 as UserConn;
    const seq = Math.min(msg.seq, replica.lastSeq);
    const known = user.marks.get(msg.room)?.readSeq ?? 0;
    if (seq <= known) {
      this.d.connections.sendRaw(conn, JSON.stringify({ type: "read", room: msg.room, seq: known }));
      return;
    }
    conn.busy = true;
    this.d.users.read(user.userId, msg.room, seq, (err, stored) => {
      this.d.unblock(conn);
      if (conn.state === "closed") return;
      if (err !== undefined && err !== null) {
        this.d.log.log("error", "read_failed", { conn: conn.id, ...describeError(err) });
        this.fail(conn, "internal", "could not store your read marker; try again", msg.id);
        return;
      }
      if (stored === undefined) {
        this.fail(conn, "not_found", `you are not in ${msg.room}`, msg.id);
        return;
      }
      this.d.users.publish(user.userId, { type: "read", room: msg.room, seq: stored });
    });
  }

  /** Renames the user in every room it is in; refused when another holds the name in one of them. */
  nick(conn: Connection, msg: Req & { type: "nick" }, nick: string): void {
    const user = conn.v2 as UserConn;
    if (user.fixedNick) {
      this.fail(conn, "forbidden", "your nickname is fixed by your access token", msg.id);
      return;
    }
    if (nick === user.nick) return;
    const members = [...user.rooms.values()];
    const key = nickKey(nick);
    const taken = members.find((m) => m.replica?.takenFrom(user.userId, key));
    if (taken) {
      this.fail(conn, "nick_taken", `${nick} is already taken in ${taken.replica?.name}`, msg.id);
      return;
    }
    conn.busy = true;
    this.d.users.rename(user.userId, nick, (err) => {
      if (conn.state === "closed") return;
      if (err !== undefined && err !== null) {
        this.d.log.log("error", "rename_failed", { conn: conn.id, ...describeError(err) });
        this.fail(conn, "internal", "the nickname could not be changed; try again", msg.id);
        this.d.unblock(conn);
        return;
      }
      let waiting = members.length + 1;
      const renamed = () => {
        if (--waiting > 0) return;
        this.d.users.publish(user.userId, { type: "nick", nick });
        this.d.unblock(conn);
      };
      for (const m of members) {
        this.d.engine.rename(m, m.replica?.name ?? "", nick, (rErr, outcome) => {
          if ((rErr !== undefined && rErr !== null) || outcome !== "ok") {
            this.d.log.log("warn", "user_rename_partial", {
              user: user.userId,
              room: m.replica?.name,
              outcome,
            });
          }
          renamed();
        });
      }
      renamed();
    });
  }
}
