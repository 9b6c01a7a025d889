/** What the chat logic needs from durable storage; SQLite and in-memory implementations stand behind it. */
import type { v2 } from "../../../protocol";
import type { ChangePage, Done, Page, Post } from "../../chat/engine";
import type { UserStore } from "../../chat/users";

export type { Page };

/** What a store keeps of v2's users: the core's UserStore but for `publish` (one process tells itself). */
export type UserTables = Omit<UserStore, "publish">;

/**
 * Runs `run` and hands its result, or what it threw (through `failed`), to `done`: at once, and once
 * only (a throw from `done` itself is not caught). How the local stores answer UserTables calls.
 */
export function answer<T>(
  done: Done<T>,
  run: () => T,
  failed: (err: unknown) => unknown = (err) => err,
): void {
  let value: T;
  try {
    value = run();
  } catch (err) {
    done(failed(err));
    return;
  }
  done(undefined, value);
}

/**
 * One chat message as stored: the wire fields plus who sent it, for dedupe across reconnects, and
 * what a v2 author adds (absent or null for a v1 post).
 */
export interface StoredMessage {
  room: string;
  seq: number;
  nick: string;
  text: string;
  /** Milliseconds since the epoch. */
  sentAt: number;
  session: string;
  clientId: string | null;
  /** The v2 author. */
  userId?: string | null | undefined;
  kind?: "action" | null | undefined;
  replyTo?: number | null | undefined;
  /** The nicks the post names, as the wire shows them. */
  mentions?: string[] | null | undefined;
  /** Ids of the v2 users it mentions, for their counts (the author's own is ignored). Not on the wire. */
  mentionIds?: string[] | null | undefined;
}

/** A resumable session: the nickname a resume token reclaims, and in which room. */
export interface SessionRecord {
  id: string;
  room: string;
  nick: string;
  /** When its last connection ended; null while one is open. */
  endedAt: number | null;
}

/** What one step of pruning did. */
export interface PruneStep {
  deleted: number;
  /** Nothing is left to delete for these arguments (as of this step). */
  done: boolean;
}

/**
 * A change as the local engine writes it: the wire message (with its rev), and for a change to a
 * post, the post's new folded state (core/posts.ts `applyChange`), which replaces the stored one.
 */
export interface StoredChange {
  room: string;
  change: v2.Change;
  post?: Post | undefined;
}

export interface ChatStore {
  /** v2's users, memberships, read markers and direct rooms, kept as durably as the messages. */
  readonly users: UserTables;
  /** Newest stored seq of a room, 0 when it has none. */
  lastSeq(room: string): number;
  /** The newest `limit` messages with `seq < before`, ascending; `more` when older ones exist. */
  before(room: string, before: number, limit: number): Page;
  /** The newest `limit` messages with `seq > after`, ascending; `more` when some were cut. */
  after(room: string, after: number, limit: number): Page;
  /** Stores messages and session changes atomically, or throws and stores nothing. */
  commit(
    messages: readonly StoredMessage[],
    sessions: readonly SessionRecord[],
    changes?: readonly StoredChange[],
  ): void;
  /** A post as it stands now (folded: current text, editedAt, deleted, reactions with their ids). */
  post(room: string, seq: number): Post | undefined;
  /** The changes with `sinceRev < rev <= upTo`, ascending, at most `limit`; `more` when some were cut. */
  changes(room: string, sinceRev: number, upTo: number, limit: number): ChangePage;
  /** The room's newest rev (0 when none) and its topic ("" when none). */
  roomMeta(room: string): { lastRev: number; topic: string };
  /** Moves what is written into its final place (SQLite: a WAL checkpoint); for when the writer is idle. */
  checkpoint?(): void;
  loadSession(id: string): SessionRecord | undefined;
  /**
   * The newest client references a session used in a room, with the seq each got. A store may look
   * only at the room's recent messages (SQLite: the newest 20,000), as retries come soon after.
   */
  recentClientIds(session: string, room: string, limit: number): Array<[string, number]>;
  /** Forgets sessions that ended before `endedBefore`. */
  dropSessions(endedBefore: number): void;
  /**
   * Retention: deletes each room's messages from the oldest on, for as long as a message is beyond
   * the room's newest `keepPerRoom` (when > 0) or was sent before `olderThanMs` (when > 0). The
   * newest message of a room is never deleted, so its lastSeq survives a restart, and what a room
   * keeps is one unbroken run of seqs: its history just starts later. Returns the rows deleted.
   */
  prune(keepPerRoom: number, olderThanMs: number): number;
  /**
   * `prune` a bounded step at a time: about `work` units at most (a row deleted or a room looked at
   * is one). Steps with the same arguments go on where the last stopped; `done` once nothing is left.
   */
  pruneStep(keepPerRoom: number, olderThanMs: number, work: number): PruneStep;
  /**
   * This store's history generation: made once with the store, so a store started afresh (a new
   * or deleted database file, a memory store) has another, and clients that saw its old seqs reset.
   */
  epoch(): string;
  close(): void;
}

export function toChatMessage(m: StoredMessage): Post {
  const post: Post = {
    type: "chat",
    room: m.room,
    seq: m.seq,
    nick: m.nick,
    text: m.text,
    sentAt: new Date(m.sentAt).toISOString(),
  };
  return m.userId == null ? post : withV2(post, m.userId, m.kind, m.replyTo, m.mentions);
}

/**
 * Adds a v2 post's fields to `post`, each only when it has a value: a v1 post gets no keys at all,
 * so its JSON stays v1's. An empty list of mentions counts as none.
 */
export function withV2(
  post: Post,
  userId: string,
  kind: string | null | undefined,
  replyTo: number | null | undefined,
  mentions: readonly string[] | null | undefined,
): Post {
  post.userId = userId;
  if (kind === "action") post.kind = kind;
  if (replyTo != null) post.replyTo = replyTo;
  if (mentions != null && mentions.length > 0) post.mentions = [...mentions];
  return post;
}
