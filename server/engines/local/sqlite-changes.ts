/**
 * Protocol v2's changes in the chat's SQLite database: each change's row (by room and rev), each
 * room's newest rev and topic, and the folded state a change leaves its post in (written over the
 * post's row in `messages`). SqliteStore writes them in the transaction of the messages they come with.
 */
import type { v2 } from "../../../protocol";
import type { ChangePage } from "../../chat/engine";
import type { SqlDatabase, SqlStatement as Statement } from "./sqlite-driver";
import type { StoredChange } from "./store";

export const CHANGES_SCHEMA = `
-- Every change of a room, its wire message as JSON. Rows of posts that retention pruned stay: a
-- room's revs are one unbroken run, and sync pages them by rev alone.
CREATE TABLE IF NOT EXISTS changes (
  room TEXT NOT NULL,
  rev INTEGER NOT NULL,
  body TEXT NOT NULL,
  PRIMARY KEY (room, rev)
) WITHOUT ROWID;
-- A room's newest rev and its topic (a row only once the room has a change), never pruned.
CREATE TABLE IF NOT EXISTS rooms (
  room TEXT PRIMARY KEY,
  topic TEXT NOT NULL DEFAULT '',
  last_rev INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
`;

/**
 * The columns of a post's folded state in `messages`, for databases made before them: when it was
 * last edited (ms), whether it is deleted (its text then ""), its reactions (JSON StoredReaction[]).
 */
export const FOLD_COLUMNS = [
  ["edited_at", "INTEGER"],
  ["deleted", "INTEGER NOT NULL DEFAULT 0"],
  ["reactions", "TEXT"],
] as const;

type FoldArgs = [
  text: string,
  editedAt: number | null,
  deleted: number,
  reactions: string | null,
  mentions: string | null,
  room: string,
  seq: number,
];

export class SqliteChanges {
  private readonly q: {
    insert: Statement<unknown, [string, number, string]>;
    rev: Statement<unknown, [string, number]>;
    topic: Statement<unknown, [string, string]>;
    fold: Statement<unknown, FoldArgs>;
    unmention: Statement<unknown, [string, number]>;
    erase: Statement<unknown, [string, string, number]>;
    page: Statement<{ body: string }, [string, number, number, number]>;
    meta: Statement<{ topic: string; last_rev: number }, [string]>;
  };

  constructor(db: SqlDatabase) {
    this.q = {
      insert: db.query("INSERT INTO changes (room, rev, body) VALUES (?, ?, ?)"),
      rev: db.query(
        "INSERT INTO rooms (room, last_rev) VALUES (?, ?) " +
          "ON CONFLICT (room) DO UPDATE SET last_rev = max(last_rev, excluded.last_rev)",
      ),
      topic: db.query("UPDATE rooms SET topic = ? WHERE room = ?"),
      fold: db.query(
        "UPDATE messages SET text = ?, edited_at = ?, deleted = ?, reactions = ?, mentions = ? " +
          "WHERE room = ? AND seq = ?",
      ),
      unmention: db.query("DELETE FROM mentions WHERE room = ? AND seq = ?"),
      // Earlier edits of a deleted post hold its text: each becomes the delete, at its own rev.
      erase: db.query(
        "UPDATE changes SET body = json_object('type', 'delete', 'room', room, 'rev', rev, " +
          "'seq', json_extract(body, '$.seq'), 'by', ?2) " +
          "WHERE room = ?1 AND json_extract(body, '$.type') = 'edit' AND json_extract(body, '$.seq') = ?3",
      ),
      page: db.query("SELECT body FROM changes WHERE room = ? AND rev > ? AND rev <= ? ORDER BY rev LIMIT ?"),
      meta: db.query("SELECT topic, last_rev FROM rooms WHERE room = ?"),
    };
  }

  /** Throws when a change cannot be stored as given: before the transaction (a bad call, not a bad file). */
  check(changes: readonly StoredChange[]): void {
    for (const { post } of changes) {
      if (post?.editedAt !== undefined && Number.isNaN(Date.parse(post.editedAt))) {
        throw new Error(`editedAt ${post.editedAt} is no time`);
      }
    }
  }

  /**
   * Stores changes (`check`ed), in order, inside the caller's transaction. A post's row takes the
   * folded state given (a post pruned meanwhile has no row: only the change is stored). A deleted
   * post keeps no text, mentions, reactions or edit time, and its mention rows go: it counts for no
   * one. Its earlier edits are rewritten as the delete (same rev), so no change row keeps its text;
   * that looks through the room's changes (deletes are rare; a seq column would index it).
   */
  write(changes: readonly StoredChange[]): void {
    for (const { room, change, post } of changes) {
      this.q.insert.run(room, change.rev, JSON.stringify(change));
      this.q.rev.run(room, change.rev);
      if (change.type === "topic") this.q.topic.run(change.topic, room);
      if (!post) continue;
      const deleted = post.deleted === true;
      const mentions = !deleted && post.mentions?.length ? JSON.stringify(post.mentions) : null;
      const reactions = !deleted && post.reactions?.length ? JSON.stringify(post.reactions) : null;
      const editedAt = !deleted && post.editedAt !== undefined ? Date.parse(post.editedAt) : null;
      this.q.fold.run(
        deleted ? "" : post.text,
        editedAt,
        deleted ? 1 : 0,
        reactions,
        mentions,
        room,
        post.seq,
      );
      if (deleted) {
        this.q.unmention.run(room, post.seq);
        if (change.type === "delete") this.q.erase.run(room, change.by, post.seq);
      }
    }
  }

  changes(room: string, sinceRev: number, upTo: number, limit: number): ChangePage {
    const n = Math.max(0, limit);
    const rows = upTo > sinceRev ? this.q.page.all(room, sinceRev, upTo, n + 1) : [];
    const more = rows.length > n;
    return {
      changes: (more ? rows.slice(0, n) : rows).map((r) => JSON.parse(r.body) as v2.Change),
      more,
    };
  }

  roomMeta(room: string): { lastRev: number; topic: string } {
    const row = this.q.meta.get(room);
    return row ? { lastRev: row.last_rev, topic: row.topic } : { lastRev: 0, topic: "" };
  }
}
