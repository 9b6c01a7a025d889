/**
 * What differs between one process and many, as the chat core sees it. An engine allocates seqs and
 * stores messages, claims nicknames, keeps sessions for resume, and hands every change to a room back
 * as an ordered, numbered log (`EngineSink.deliver`): the local engine after its SQLite commit, the
 * Redis one as it replays the room's stream. The core delivers both through the same code.
 *
 * Callbacks, not promises: the local engine answers synchronously, so the hot path makes no promise.
 */
import type { ChatMessage, PresenceEvent, v2 } from "../../protocol";
import type { UserEvent, UserStore } from "./users";

/**
 * A post as stored and logged: v1's chat message, plus what v2 adds when its author is a v2 user
 * (`userId`, `kind`, `replyTo`, and `mentions`: the nicks it names). Only posts.ts turns it into wire
 * messages, so a v1 connection never sees a v2 field.
 */
export interface Post extends ChatMessage {
  userId?: string | undefined;
  kind?: "action" | undefined;
  replyTo?: number | undefined;
  mentions?: string[] | undefined;
  /** Folded in by its changes: when it was last edited (ISO), deleted (its text then ""), reactions. */
  editedAt?: string | undefined;
  deleted?: true | undefined;
  reactions?: StoredReaction[] | undefined;
}

/** A reaction as stored: the emoji and who holds it, in the order they reacted (nicks as they were then). */
export interface StoredReaction {
  emoji: string;
  nicks: string[];
  ids: string[];
}

/**
 * A change the core asks an engine to store with the room's next rev. The core has checked who may
 * (author, moderator, edit window); the engine applies it atomically and refuses what the post's
 * state forbids at that moment (deleted meanwhile, the emoji cap reached).
 */
export type ChangeRequest =
  | { type: "edit"; seq: number; text: string }
  | { type: "delete"; seq: number; by: string }
  | { type: "react"; seq: number; emoji: string; on: boolean; userId: string; nick: string; maxEmoji: number }
  | { type: "topic"; topic: string; nick: string };

/**
 * What storing a change did: its rev, or why nothing changed: `gone` (no such post, or deleted),
 * `unchanged` (the reaction already stood so), `full` (a new emoji past `maxEmoji`).
 */
export type ChangeOutcome = { ok: true; rev: number } | { ok: false; why: "gone" | "unchanged" | "full" };

/**
 * A kick of a v1 connection, logged so every process closes (4003) the connections it has under that
 * nick. A v2 user is kicked through the UserStore instead (a `kicked` user event: all its tabs leave).
 */
export interface Kick {
  nick: string;
  /** Who kicked (a nick, or "admin"), why, and a ban's end (ISO) if it was a ban. */
  by: string;
  reason?: string | undefined;
  until?: string | undefined;
}

/** A page of a room's changes. */
export interface ChangePage {
  changes: v2.Change[];
  /** More changes exist after the last one here (up to the asked `upTo`). */
  more: boolean;
}

/** What a v2 post adds, as `chat` is asked to store it. */
export interface PostMeta {
  userId: string;
  kind?: "action" | undefined;
  replyTo?: number | undefined;
  /** The nicks the text names, and the ids of those of them that are v2 users (for their counts). */
  mentions?: string[] | undefined;
  mentionIds?: string[] | undefined;
}

/** One entry of a room's log. `n` numbers a room's entries 1, 2, 3, ... so a gap shows. */
export type RoomEntry =
  | {
      n: number;
      kind: "chat";
      msg: Post;
      /** The post encoded as it is stored (v2 fields included), when the engine has it. */
      wire?: string;
    }
  /** `at`: when it happened, if the engine knows (a big room's batch window starts there). */
  /** `userId`: the v2 user the event is about (absent for a v1 connection). */
  | { n: number; kind: "presence"; event: PresenceEvent; at?: number; userId?: string | undefined }
  | { n: number; kind: "typing" /** connection id of the typer */; from: string; wire: string }
  /** A resumed connection took over `conn`'s nickname; `conn` is closed with 4001 wherever it is. */
  | { n: number; kind: "replaced"; conn: string }
  /** A chat whose write failed: nothing to deliver; its number keeps the count gapless. */
  | { n: number; kind: "void" }
  /** A stored change (`change.rev` is the room's rev), as v2 clients get it; v1 gets nothing. */
  | { n: number; kind: "change"; change: v2.Change }
  | ({ n: number; kind: "kick" } & Kick);

/** A room as of one log position: what a replica starts from. */
export interface RoomSnapshot {
  /** The room's history generation (see the welcome's `epoch`); new when its history was lost. */
  epoch?: string | undefined;
  lastSeq: number;
  lastN: number;
  /** The room's newest change's rev (0: none yet), and its topic ("" when none). */
  lastRev?: number | undefined;
  topic?: string | undefined;
  /** Nicknames of everyone in the room, on every process. */
  users: string[];
  /** Of those, the v2 users: nick -> userId. */
  owners?: ReadonlyMap<string, string> | undefined;
  /** The newest messages (up to LIMITS.sinceMax), ascending; empty from an engine with `pages`. */
  recent: Post[];
}

/** The part of a connection an engine reads and writes. */
export interface EngineConn {
  readonly id: string;
  /** The resume token of its session ("" before its first claim). */
  session: string;
  nick: string;
  /** The v2 user it belongs to; absent on a v1 connection. */
  userId?: string | undefined;
}

export interface EnterRequest {
  room: string;
  /** A resume token: reclaims that session's nickname in this room, if still valid. */
  resume?: string | undefined;
  /** Wanted nickname; the first free variant is claimed. Undefined asks for a guest name. */
  wanted?: string | undefined;
  /** Nickname fixed by an access token: a session with another nickname is not resumed. */
  fixedNick?: string | undefined;
  /** The client address, for the per-address cap on resumable sessions. */
  client?: string | undefined;
  /**
   * v2: the claim is the user's, shared by all its connections in the room (on every process): the
   * first one logs the join, the last one to leave the leave. The nick is taken as it is (the core
   * chose it free); held by anyone else, the claim fails with a NickTakenError.
   */
  user?: { userId: string; nick: string } | undefined;
}

/** A v2 user's nick is held in the room by someone else. */
export class NickTakenError extends Error {
  constructor(nick: string, room: string) {
    super(`${nick} is taken in ${room}`);
    this.name = "NickTakenError";
  }
}

/** A claim: the nickname and session the connection holds, and the log entry of its join. */
export interface Claim {
  nick: string;
  session: string;
  /** Number of the entry (join, or a takeover) after which its welcome may go. */
  at: number;
}

/** `banned`: a ban in the room holds the new nick out (checked by v1 renames, in the same step). */
export type RenameOutcome = "ok" | "taken" | "gone" | "banned";

export interface Page {
  messages: Post[];
  /** More messages exist beyond this page (older for `before`, newer-but-cut for `after`). */
  more: boolean;
}

/** One row of `GET /api/rooms`. */
export interface RoomCount {
  room: string;
  users: number;
}

export type Done<T> = (err: unknown, value?: T) => void;

/** What the engine calls back into the core with. */
export interface EngineSink<C extends EngineConn> {
  /** New entries of a room's log, in order (entries the replica already has are skipped). */
  deliver(room: string, entries: readonly RoomEntry[]): void;
  /** A chat is stored as `seq` (or was, the first time its `id` was sent); called for every chat. */
  committed(conn: C, room: string, id: string | undefined, seq: number): void;
  /** A chat could not be stored: nothing of it was delivered; the client may send it again. */
  failed(conn: C, id: string | undefined): void;
  /** This process lost track of a room: its members here must come back with `since`. */
  resync(room: string, why: string): void;
  /** This connection's claim is gone (its nickname taken meanwhile): it alone must come back. */
  evict(conn: C, why: string): void;
  /** Something every connection of a v2 user here must hear (see UserStore.publish). */
  user(userId: string, event: UserEvent): void;
}

/**
 * Pages of stored messages for welcomes, answered at once. An engine whose storage is local offers
 * them, and the core then keeps no copy of each room's newest messages (less memory to hold and scan).
 */
export interface WelcomePages {
  /** With `since`: every message after it up to `upTo` (the newest `sinceMax` of them, `more` if cut); else the newest `welcomeHistory` up to `upTo`. Throws when storage fails. */
  page(room: string, since: number | undefined, upTo: number): Page;
}

export interface Engine<C extends EngineConn> {
  /** Resolves once the engine can serve; rejects (with a ConfigError) when it never can. */
  readonly ready: Promise<void>;
  /** Present when welcomes may read storage directly; else the core keeps the newest messages. */
  readonly pages?: WelcomePages | undefined;
  /** Protocol v2's users, memberships and read markers. */
  readonly users: UserStore;
  bind(sink: EngineSink<C>): void;
  /** Starts following a room; `done` gets the snapshot its log continues from. */
  load(room: string, done: Done<RoomSnapshot>): void;
  /** No one here needs the room any more. */
  unload(room: string): void;
  /** Claims a nickname (resuming a session when it can) and logs the join. */
  enter(conn: C, req: EnterRequest, done: Done<Claim>): void;
  /** Gives up the connection's claim in `room`, if it still holds it; `ending`: its session's expiry starts. */
  leave(conn: C, room: string, ending: boolean): void;
  /** Stores a chat; it comes back through `deliver`, and `committed` or `failed`, in either order. */
  chat(conn: C, room: string, text: string, id: string | undefined, meta?: PostMeta): void;
  rename(conn: C, room: string, nick: string, done: Done<RenameOutcome>): void;
  /** A post as it stands now (its changes folded in), or undefined when the room has none with that seq. */
  post(room: string, seq: number, done: Done<Post | undefined>): void;
  /** Stores a change with the room's next rev; it comes back through `deliver` (before `done` is called or after). */
  change(room: string, req: ChangeRequest, done: Done<ChangeOutcome>): void;
  /** The changes with `sinceRev < rev <= upTo`, ascending, at most `limit` of them. */
  changes(room: string, sinceRev: number, upTo: number, limit: number, done: Done<ChangePage>): void;
  /** Logs a kick in the room (not stored: the kicked leave, and a ban is kept in the UserStore). */
  kick(room: string, kick: Kick): void;
  /** Relays typing through the room's log (never stored). */
  typing(conn: C, room: string, wire: string): void;
  /** The newest `limit` messages with `seq < before`, ascending. */
  history(room: string, before: number, limit: number, done: Done<Page>): void;
  /** Rooms with users (on every process), busiest first. */
  roomList(): RoomCount[] | Promise<RoomCount[]>;
  /** Writes what is pending now; `force`: hold nothing back (at shutdown). */
  flush(force: boolean): void;
  /** Forgets what has expired (sessions, dead processes). */
  sweep(): void;
  /** After the last flush: waits for writes in flight and lets go of storage. */
  stop(): Promise<void>;
  /** For tests: resolves once nothing is in flight and every followed room's log was delivered. */
  quiesce(): Promise<void>;
}
