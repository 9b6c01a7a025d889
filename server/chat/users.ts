/**
 * What protocol v2 keeps about users, as the chat core sees it: who they are (a stable id, one
 * nickname), the rooms they are members of with a read marker in each, the direct rooms between two
 * of them, and the counts of what they have not read. Each engine stores it durably (SQLite, memory,
 * Redis) behind this interface; the rules (limits, who may join what, when a marker moves) live in
 * the core. Callbacks, as the Engine's: the local store answers before it returns.
 */
import type { Done } from "./engine";

/** One room of a user. */
export interface Membership {
  room: string;
  /** The read marker: every post up to it counts as read. */
  readSeq: number;
  /** For a direct room: the other user's id. */
  peer?: string | undefined;
}

export interface UserRecord {
  userId: string;
  nick: string;
  /** In the order they were joined. */
  rooms: Membership[];
}

/** What a count is asked for: posts after `readSeq` up to `upTo`, not by `userId` (the asker). */
export interface CountQuery {
  room: string;
  readSeq: number;
  upTo: number;
}

/** Exact up to `cap`: posts by others (not deleted) after the marker, and those that mention the user. */
export interface Counts {
  unread: number;
  mentions: number;
}

export type JoinOutcome = "joined" | "member" | "full";

/**
 * Of some bans, the one that holds at `now` and ends last (one for ever first): what `banned`
 * answers, so the refusal tells the real end. SQLite's query orders the same way.
 */
export function holdingBan(bans: Iterable<Ban>, now: number): Ban | undefined {
  let found: Ban | undefined;
  for (const ban of bans) {
    if (ban.until !== null && ban.until <= now) continue;
    if (!found || (found.until !== null && (ban.until === null || ban.until > found.until))) found = ban;
  }
  return found;
}

/** A ban from one room: of a v2 user (by id, and its nick then, which holds v1 connections out too) or of a v1 nick. */
export interface Ban {
  userId?: string | undefined;
  /** nickKey of the nick banned. */
  nickKey: string;
  /** When it ends, in ms since the epoch; null: never. */
  until: number | null;
  reason?: string | undefined;
  by: string;
}

/** Something every connection of one user must hear, on whichever process it is. */
export type UserEvent =
  | { type: "joined"; room: string; readSeq: number; peer?: string | undefined }
  | { type: "parted"; room: string }
  | { type: "read"; room: string; seq: number }
  | { type: "nick"; nick: string }
  | { type: "revoked" }
  /** Kicked (or banned) from a room by a moderator: its connections leave it with `kicked`. */
  | { type: "kicked"; room: string; by: string; reason?: string | undefined; until?: string | undefined };

export interface UserStore {
  /** The key identity tokens are signed with: generated once and kept, unless configured. */
  identityKey(done: Done<string>): void;
  /** Makes a user; a user that exists is left as it is. */
  create(userId: string, nick: string, done: Done<void>): void;
  /** The user, or undefined when unknown or revoked. */
  load(userId: string, done: Done<UserRecord | undefined>): void;
  /** Nicknames of these users (those unknown are left out). */
  nicks(userIds: readonly string[], done: Done<Map<string, string>>): void;
  /** Revokes a user for good: its identity token stops working. False when it was unknown. */
  revoke(userId: string, done: Done<boolean>): void;
  rename(userId: string, nick: string, done: Done<void>): void;
  /** Adds the room, with its marker at `readSeq`, unless the user has `max` rooms already. */
  join(userId: string, m: Membership, max: number, done: Done<JoinOutcome>): void;
  /** False when the user was not a member. */
  part(userId: string, room: string, done: Done<boolean>): void;
  /** Moves the marker to `seq` if that is forward; answers the stored marker. Undefined: not a member. */
  read(userId: string, room: string, seq: number, done: Done<number | undefined>): void;
  /** For each query, the counts of `userId`, each capped at `cap`. */
  counts(userId: string, queries: readonly CountQuery[], cap: number, done: Done<Counts[]>): void;
  /** The direct room of two users, made (named with `name`) the first time it is asked for. */
  directRoom(a: string, b: string, name: () => string, done: Done<string>): void;
  /** The two users of a direct room; undefined when there is no such room. */
  directPair(room: string, done: Done<readonly [string, string] | undefined>): void;
  /** Stores a ban (replacing one of the same user or nick in that room). */
  ban(room: string, ban: Ban, done: Done<void>): void;
  /** Lifts the ban of `userId` (a v2 user id, or `v1:NICKKEY` for a v1 nick) in `room`; false when there was none. */
  unban(room: string, userId: string, done: Done<boolean>): void;
  /** The ban in force at `now` (ms) in `room` on this user id or this nick (nickKey), if any. */
  banned(
    room: string,
    who: { userId?: string | undefined; nickKey?: string | undefined },
    now: number,
    done: Done<Ban | undefined>,
  ): void;
  /** Tells every process with connections of `userId` (this one included, through the sink). */
  publish(userId: string, event: UserEvent): void;
}
