/**
 * The requests that change a room's posts and the room itself (edit, delete, react, topic) and a
 * moderator's kick and ban. The rules live here: who may (the author, a moderator), until when (the
 * edit window), on what (a post that exists and is not deleted); the engine stores each change with
 * the room's next rev, refusing only what the post's state forbids at that moment.
 */
import { nickKey, v2 } from "../../../protocol";
import type { Connection } from "../connection";
import type { ChangeOutcome, ChangeRequest, Engine, EngineConn, Post } from "../engine";
import type { ChatLimits } from "../limits";
import { describeError, type Logger } from "../log";
import type { Replica } from "../replica";
import type { Replicas } from "../replicas";
import type { UserStore } from "../users";
import type { UserConn } from "./user-conn";
import type { UserRequests } from "./user-requests";

type Req = v2.ClientMessageV2;

export interface ChangeRequestsDeps {
  engine: Engine<EngineConn>;
  users: UserStore;
  replicas: Replicas;
  requests: UserRequests;
  limits: ChatLimits;
  log: Logger;
  /** Wall-clock time (ms since the epoch): edit windows and bans. */
  wallNow: () => number;
  unblock: (conn: Connection) => void;
}

/** Who acts: a connection's user, or the admin API. */
export interface Actor {
  nick: string;
  userId: string | undefined;
  mod: boolean;
}

/** Why a moderation or change failed, in the error codes of v2. */
export type Refusal = { code: "not_found" | "forbidden" | "too_large" | "internal"; message: string };

export class ChangeRequests {
  constructor(private readonly d: ChangeRequestsDeps) {}

  /** A change request from a connection: answered with an error (with its id) or seen by all as the change. */
  handle(conn: Connection, msg: Req & { type: "edit" | "delete" | "react" | "topic" }): void {
    const member = this.d.requests.member(conn, msg.room, msg.id);
    if (!member) return;
    const user = conn.v2 as UserConn;
    const actor: Actor = { nick: user.nick, userId: user.userId, mod: user.mod };
    conn.busy = true;
    this.apply(msg.room, actor, msg, (refusal) => {
      if (refusal && conn.state !== "closed")
        this.d.requests.fail(conn, refusal.code, refusal.message, msg.id);
      this.d.unblock(conn);
    });
  }

  /** Checks the rules and stores the change; `done` gets the refusal, if any. */
  apply(
    room: string,
    actor: Actor,
    msg: Req & { type: "edit" | "delete" | "react" | "topic" },
    done: (refusal?: Refusal) => void,
  ): void {
    if (msg.type === "topic") {
      this.store(room, { type: "topic", topic: msg.topic, nick: actor.nick }, done);
      return;
    }
    this.d.engine.post(room, msg.seq, (err, post) => {
      if (err !== undefined && err !== null) return done(this.internal(err));
      if (!post || post.deleted)
        return done({ code: "not_found", message: `there is no post ${msg.seq} in ${room}` });
      const refusal = this.check(actor, post, msg);
      if (refusal) return done(refusal);
      this.store(room, this.request(actor, msg), done);
    });
  }

  private check(
    actor: Actor,
    post: Post,
    msg: Req & { type: "edit" | "delete" | "react" },
  ): Refusal | undefined {
    const own = actor.userId !== undefined && post.userId === actor.userId;
    if (msg.type === "edit") {
      if (!own) return { code: "forbidden", message: "only its author may edit a post" };
      const window = this.d.limits.editWindowMs;
      if (window > 0 && this.d.wallNow() - Date.parse(post.sentAt) > window) {
        return {
          code: "forbidden",
          message: `posts may be edited for ${window / 1000} seconds after they are sent`,
        };
      }
    }
    if (msg.type === "delete" && !own && !actor.mod) {
      return { code: "forbidden", message: "only its author or a moderator may delete a post" };
    }
    return undefined;
  }

  private request(actor: Actor, msg: Req & { type: "edit" | "delete" | "react" }): ChangeRequest {
    switch (msg.type) {
      case "edit":
        return { type: "edit", seq: msg.seq, text: msg.text };
      case "delete":
        return { type: "delete", seq: msg.seq, by: actor.nick };
      case "react":
        return {
          type: "react",
          seq: msg.seq,
          emoji: msg.emoji,
          on: msg.on,
          userId: actor.userId ?? "",
          nick: actor.nick,
          maxEmoji: v2.LIMITS_V2.reactionsPerPost,
        };
    }
  }

  private store(room: string, req: ChangeRequest, done: (refusal?: Refusal) => void): void {
    this.d.engine.change(room, req, (err, outcome?: ChangeOutcome) => {
      if (err !== undefined && err !== null) return done(this.internal(err));
      if (!outcome || outcome.ok) return done();
      if (outcome.why === "gone") return done({ code: "not_found", message: "that post is gone" });
      if (outcome.why === "full") {
        return done({
          code: "too_large",
          message: `a post carries at most ${v2.LIMITS_V2.reactionsPerPost} different emoji`,
        });
      }
      done(); // a reaction that already stood so: nothing to change
    });
  }

  /**
   * Kicks (and with `ban`, bans) whoever holds `nick` in the room: a v2 user leaves the room for
   * good (its connections get `kicked`), a v1 connection is closed with 4003.
   */
  moderate(
    replica: Replica<Connection>,
    actor: Actor,
    kick: { nick: string; reason?: string | undefined; ban?: { seconds?: number | undefined } },
    done: (refusal?: Refusal) => void,
  ): void {
    if (!actor.mod) {
      done({ code: "forbidden", message: "only moderators may kick or ban" });
      return;
    }
    const holder = replica.holder(kick.nick);
    if (holder === undefined) {
      done({ code: "not_found", message: `no one called ${kick.nick} is in ${replica.name}` });
      return;
    }
    const userId = holder === "" ? undefined : holder;
    const nick = replica.users.get(nickKey(kick.nick)) ?? kick.nick;
    const until = kick.ban?.seconds === undefined ? null : this.d.wallNow() + kick.ban.seconds * 1000;
    const untilIso = kick.ban && until !== null ? new Date(until).toISOString() : undefined;
    const out = () => {
      const event = {
        type: "kicked" as const,
        room: replica.name,
        by: actor.nick,
        reason: kick.reason,
        until: untilIso,
      };
      if (userId === undefined) {
        this.d.engine.kick(replica.name, { nick, by: actor.nick, reason: kick.reason, until: untilIso });
        return done();
      }
      this.d.users.part(userId, replica.name, (err) => {
        if (err !== undefined && err !== null) return done(this.internal(err));
        this.d.users.publish(userId, event);
        done();
      });
    };
    if (!kick.ban) {
      out();
      return;
    }
    const ban = { userId, nickKey: nickKey(nick), until, reason: kick.reason, by: actor.nick };
    this.d.users.ban(replica.name, ban, (err) => {
      if (err !== undefined && err !== null) return done(this.internal(err));
      out();
    });
  }

  private internal(err: unknown): Refusal {
    this.d.log.log("error", "change_failed", describeError(err));
    return { code: "internal", message: "the server could not do that now; try again" };
  }
}
