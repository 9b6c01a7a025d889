/**
 * The room scripts of scripts.ts called with plain values: callers never build an ARGV list, and each
 * reply comes back typed. One instance per process: it carries the key space, stream length and process
 * id. A session's keys live in the partition of the room it is used in (key-space.ts).
 */
import { LIMITS } from "../../../protocol";
import type { ChangeOutcome, ChangeRequest, Kick } from "../../chat/engine";
import { changeMessage } from "../../chat/posts";
import { CHANGE, KICK } from "./change-scripts";
import type { KeySpace } from "./key-space";
import { type Call, type RedisLink, runScript, scriptCall } from "./redis-link";
import {
  CHAT,
  CLAIM,
  CLAIM_USER,
  GUEST,
  LEAVE,
  LEAVE_USER,
  NEW_EPOCH,
  RECONCILE,
  RENAME,
  RENAME_USER,
  ROTATE,
  SESSION_CAP,
  SNAPSHOT,
  TYPING,
} from "./scripts";

/**
 * What the snapshot script returns: seq, n, last stream id, user entries, newest chats descending,
 * epoch, the v2 users present as a flat [userId, nick, ...] list, the newest rev and the topic.
 */
export type SnapshotReply = [number, number, string, string[], string[], string, string[], number, string];

/** A v2 claim's outcome: made ('j', with its join's entry), joined ('m', at the room's newest entry), or the nick taken. */
export type UserClaimReply = [kind: "j" | "m", nick: string, at: number] | [kind: "taken"];

/**
 * One chat as CHAT takes it: session, client id or "", head, tail; for a v2 post the session is
 * `u:` and its author's id, followed by the number of users it mentions and their ids.
 */
export type ChatArgs = string[];

export type RenameReply = "ok" | "taken" | "gone";

/** A claim's outcome: joined ('j') or took over its own session's entry ('r'), or no candidate free. */
export type ClaimReply = [kind: "j" | "r", nick: string, at: number] | [kind: "full"];

/** Where a session stands in Redis: its room, nickname, nickname key and token secret; nulls once it expired. */
export interface SessionEntry {
  room: string | null;
  nick: string | null;
  key: string | null;
  secret: string | null;
}

/** One connection of this process in a room, as RECONCILE takes it (session "" while its claim is in flight). */
export interface HeldEntry {
  conn: string;
  session: string;
  key: string;
  nick: string;
  /** The v2 user whose claim it shares; "" for a v1 connection. */
  userId: string;
}

/** What RECONCILE found: entries removed, and per connection listed what differs ('a' carries the nickname). */
export type ReconcileReply =
  | { kind: "unregistered" }
  | {
      kind: "ok";
      removed: number;
      notes: Array<{ what: "a" | "j" | "r" | "t"; conn: string; nick?: string }>;
    };

export class RoomScripts {
  constructor(
    private readonly link: RedisLink,
    private readonly keys: KeySpace,
    private readonly maxLen: string,
    private readonly procId: string,
    private readonly limits: {
      resumeTtlMs: number;
      dedupeWindow: number;
      retentionMaxMessages: number;
      /** Messages older than this go as chats are stored (0: kept). */
      retentionMaxAgeMs: number;
      /** Replicas that must hold a chat or a change before it is acknowledged (WAIT). */
      minReplicas: number;
    },
  ) {}

  /** The room's counters, users and newest chats, consistent with one stream position. */
  async snapshot(room: string): Promise<SnapshotReply> {
    return (await runScript(this.link, SNAPSHOT, [
      this.keys.room(room),
      room,
      LIMITS.sinceMax,
    ])) as SnapshotReply;
  }

  /** `sid`: the session's stable id (the first part of its resume token), as known in `inRoom`'s partition. */
  async session(inRoom: string, sid: string): Promise<SessionEntry> {
    const [room = null, nick = null, key = null, secret = null] = (await this.link.send("HMGET", [
      `${this.keys.room(inRoom)}sess:${sid}`,
      "room",
      "nick",
      "key",
      "secret",
    ])) as Array<string | null>;
    return { room, nick, key, secret };
  }

  /** Counts a new session against its client address's cap; resolves to the ended sessions forgotten. */
  async capSessions(room: string, client: string, sid: string, now: number, cap: number): Promise<number> {
    const keep = this.limits.resumeTtlMs + 24 * 3600_000;
    const args = [this.keys.room(room), client, sid, now, cap, keep];
    return (await runScript(this.link, SESSION_CAP, args)) as number;
  }

  /**
   * Swaps the session's token secret `from` for `to`, only if `from` is still it: of two resumes
   * with one token, one wins. `from` "" sets the first secret of a new session. True when swapped.
   */
  async rotate(room: string, sid: string, from: string, to: string): Promise<boolean> {
    return (await runScript(this.link, ROTATE, [this.keys.room(room), sid, from, to])) === 1;
  }

  /** Claims the first free of `candidates` ([nickKey, nick] pairs), or takes over the session's own entry. */
  async claim(
    room: string,
    connId: string,
    token: string,
    candidates: Array<[string, string]>,
  ): Promise<ClaimReply> {
    return (await this.onRoom(CLAIM, room, this.procId, connId, token, ...candidates.flat())) as ClaimReply;
  }

  /** The next guest number, of the whole chat. */
  async nextGuest(): Promise<number> {
    return Number(await runScript(this.link, GUEST, [this.keys.guests]));
  }

  /** Stores a batch of chats; one seq each (negative: a repeat). */
  async chats(room: string, messages: readonly ChatArgs[]): Promise<number[]> {
    const { dedupeWindow, retentionMaxMessages, retentionMaxAgeMs, minReplicas } = this.limits;
    const cutoff = retentionMaxAgeMs > 0 ? new Date(Date.now() - retentionMaxAgeMs).toISOString() : "";
    const args = [
      this.keys.room(room),
      room,
      this.maxLen,
      dedupeWindow,
      retentionMaxMessages,
      cutoff,
      ...messages.flat(),
    ];
    return (await runScript(this.link, CHAT, args, minReplicas)) as number[];
  }

  /** v2: `connId` joins user `userId`'s claim in `room`, made under `nick` (at `key`) if it has none. */
  async claimUser(
    room: string,
    connId: string,
    userId: string,
    key: string,
    nick: string,
  ): Promise<UserClaimReply> {
    return (await this.onRoom(CLAIM_USER, room, this.procId, connId, userId, key, nick)) as UserClaimReply;
  }

  /** v2: `connId` leaves its user's claim in `room` (idempotent); the last connection out logs the leave. */
  async leaveUser(room: string, connId: string): Promise<void> {
    await this.onRoom(LEAVE_USER, room, this.procId, connId);
  }

  /** v2: renames user `userId`'s claim in `room`, `connId` being one of its connections there. */
  renameUser(
    room: string,
    connId: string,
    userId: string,
    newKey: string,
    nick: string,
  ): { reply: Promise<RenameReply>; late: Promise<RenameReply> | undefined } {
    const call = this.callOnRoom(RENAME_USER, room, this.procId, connId, userId, newKey, nick);
    const outcome = (p: Promise<unknown>) => p.then((r) => (r as [RenameReply])[0]);
    return { reply: outcome(call.reply), late: call.late && outcome(call.late) };
  }

  /**
   * Renames the connection's entry (found at `oldKey` or through its session `token`). `reply` within
   * the timeout; `late`, the outcome whenever it comes (a timed-out rename may still run).
   */
  rename(
    room: string,
    connId: string,
    oldKey: string,
    newKey: string,
    nick: string,
    token: string,
  ): { reply: Promise<RenameReply>; late: Promise<RenameReply> | undefined } {
    const call = this.callOnRoom(RENAME, room, oldKey, newKey, nick, connId, token);
    const outcome = (p: Promise<unknown>) => p.then((r) => (r as [RenameReply])[0]);
    return { reply: outcome(call.reply), late: call.late && outcome(call.late) };
  }

  /**
   * Gives up the connection's users entry (at `key`, or where its session says) if it still holds
   * it; `ending` starts its session's expiry unless another connection holds the session.
   */
  async leave(room: string, key: string, connId: string, token: string, ending: boolean): Promise<void> {
    const copies = this.keys.partitions.length > 1 ? "1" : "0";
    await this.onRoom(LEAVE, room, key, connId, ending ? "1" : "0", this.limits.resumeTtlMs, token, copies);
  }

  /** Puts the room's users hash in agreement with this process's connections there (scripts.ts RECONCILE). */
  async reconcile(room: string, held: HeldEntry[]): Promise<ReconcileReply> {
    const args = held.flatMap((h) => [h.conn, h.session, h.key, h.nick, h.userId]);
    const raw = (await this.onRoom(RECONCILE, room, this.procId, this.limits.resumeTtlMs, ...args)) as Array<
      string | number
    >;
    if (raw[0] !== "ok") return { kind: "unregistered" };
    const notes: Array<{ what: "a" | "j" | "r" | "t"; conn: string; nick?: string }> = [];
    for (let i = 2; i < raw.length; ) {
      const what = raw[i] as "a" | "j" | "r" | "t";
      const conn = String(raw[i + 1]);
      if (what === "a") {
        notes.push({ what, conn, nick: String(raw[i + 2]) });
        i += 3;
      } else {
        notes.push({ what, conn });
        i += 2;
      }
    }
    return { kind: "ok", removed: Number(raw[1]), notes };
  }

  async typing(room: string, connId: string, data: string): Promise<void> {
    await this.onRoom(TYPING, room, connId, data);
  }

  /**
   * Stores a change with the room's next rev (change-scripts.ts CHANGE). Its wire message is
   * `changeMessage`'s, cut around the rev for the script to fill in; `at` is its time.
   */
  async change(room: string, req: ChangeRequest, at: string): Promise<ChangeOutcome> {
    const wire = JSON.stringify(changeMessage(room, 0, req, at));
    const cut = wire.indexOf(',"rev":0,');
    if (cut < 0) throw new Error(`no rev to fill in: ${wire}`);
    const head = wire.slice(0, cut + 7);
    const tail = wire.slice(cut + 8);
    let args: Array<string | number>;
    switch (req.type) {
      case "edit":
        args = [req.seq, req.text];
        break;
      case "delete":
        args = [req.seq];
        break;
      case "react":
        args = [req.seq, req.emoji, req.on ? "1" : "0", req.userId, req.nick, req.maxEmoji];
        break;
      case "topic":
        args = [req.topic];
        break;
    }
    const all = [this.keys.room(room), room, this.maxLen, at, head, tail, req.type, ...args];
    const [ok, what] = (await runScript(this.link, CHANGE, all, this.limits.minReplicas)) as [
      number,
      number | "gone" | "unchanged" | "full",
    ];
    return ok === 1
      ? { ok: true, rev: Number(what) }
      : { ok: false, why: what as "gone" | "unchanged" | "full" };
  }

  /**
   * Starts a new history generation for the room if it is still at `epoch` (of several processes
   * that saw its log go back, one makes it). True when this call made it.
   */
  async newEpoch(room: string, epoch: string): Promise<boolean> {
    return (await runScript(this.link, NEW_EPOCH, [this.keys.room(room), room, epoch])) === 1;
  }

  /** Logs a kick in the room's stream; resolves to its entry's number. */
  async kick(room: string, kick: Kick): Promise<number> {
    return Number(await this.onRoom(KICK, room, JSON.stringify(kick)));
  }

  /** The scripts that append to a room's stream all start with P, room, maxlen. */
  private onRoom(script: string, room: string, ...rest: Array<string | number>): Promise<unknown> {
    return runScript(this.link, script, [this.keys.room(room), room, this.maxLen, ...rest]);
  }

  private callOnRoom(script: string, room: string, ...rest: Array<string | number>): Call {
    return scriptCall(this.link, script, [this.keys.room(room), room, this.maxLen, ...rest]);
  }
}
