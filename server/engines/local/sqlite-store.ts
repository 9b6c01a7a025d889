/**
 * ChatStore on SQLite in WAL mode: one transaction per flush, so an ack means the row is durable. The
 * driver is bun:sqlite on Bun and node:sqlite elsewhere (sqlite-driver.ts); the SQL is the same.
 * One process at a time: a lock beside the file (DB_PATH.lock) keeps a second server out, and a file
 * that may be damaged is checked before anything is read from it or written to it.
 */
import { closeSync, existsSync, fsyncSync, openSync, readSync, realpathSync, statSync } from "node:fs";
import { freemem } from "node:os";
import type { ChangePage, Post, StoredReaction } from "../../chat/engine";
import { randomToken } from "../../chat/tokens";
import { CHANGES_SCHEMA, FOLD_COLUMNS, SqliteChanges } from "./sqlite-changes";
import {
  runtimeSqlite,
  type SqlDatabase,
  type SqliteDriver,
  type SqlStatement as Statement,
  sqliteErrorCode,
} from "./sqlite-driver";
import { SqliteUsers, USERS_SCHEMA } from "./sqlite-users";
import {
  type ChatStore,
  type Page,
  type PruneStep,
  type SessionRecord,
  type StoredChange,
  type StoredMessage,
  withV2,
} from "./store";

interface Row {
  room: string;
  seq: number;
  nick: string;
  text: string;
  sent_at: number;
  user_id: string | null;
  kind: string | null;
  reply_to: number | null;
  /** A JSON list of nicks. */
  mentions: string | null;
  /** The folded state its changes left (see sqlite-changes.ts). */
  edited_at: number | null;
  deleted: number;
  /** JSON StoredReaction[]. */
  reactions: string | null;
}

const SCHEMA = `
-- A rowid table appends each commit's rows to one page; keyed on (room, seq) it would touch a
-- page per active room per commit. The unique index keeps (room, seq) lookups and uniqueness.
CREATE TABLE IF NOT EXISTS messages (
  room TEXT NOT NULL,
  seq INTEGER NOT NULL,
  nick TEXT NOT NULL,
  text TEXT NOT NULL,
  sent_at INTEGER NOT NULL,
  session TEXT NOT NULL,
  client_id TEXT,
  -- v2 (NULL for a v1 post); a database from before v2 gets them from migrateMessages.
  user_id TEXT,
  kind TEXT,
  reply_to INTEGER,
  mentions TEXT,
  -- v2's changes fold into these (sqlite-changes.ts); a database from before them gets them too.
  edited_at INTEGER,
  deleted INTEGER NOT NULL DEFAULT 0,
  reactions TEXT,
  UNIQUE (room, seq)
);
-- No index by session: it cost more than the insert itself (random keys). Dedupe after a restart
-- scans the room's newest rows instead (see DEDUPE_SCAN_ROWS), which is rare and bounded.
DROP INDEX IF EXISTS messages_by_session;
CREATE TABLE IF NOT EXISTS sessions (
  id TEXT PRIMARY KEY,
  room TEXT NOT NULL,
  nick TEXT NOT NULL,
  ended_at INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
-- The v2 users a post mentions, for their counts; written with the post, pruned with it.
CREATE TABLE IF NOT EXISTS mentions (
  room TEXT NOT NULL,
  user_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY (user_id, room, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS mentions_by_room ON mentions (room, seq);
`;

/** The columns v2 added to `messages`, for databases made before them. */
const V2_COLUMNS = [
  ["user_id", "TEXT"],
  ["kind", "TEXT"],
  ["reply_to", "INTEGER"],
  ["mentions", "TEXT"],
  ...FOLD_COLUMNS,
] as const;

/**
 * Adds the columns `messages` lacks (a database from before v2, or before its changes); its rows
 * get NULL (v1 posts) and 0 (not deleted).
 */
function migrateMessages(db: SqlDatabase): void {
  const have = new Set(
    db
      .query<{ name: string }, []>("PRAGMA table_info(messages)")
      .all()
      .map((c) => c.name),
  );
  for (const [name, type] of V2_COLUMNS) {
    if (!have.has(name)) db.run(`ALTER TABLE messages ADD COLUMN ${name} ${type}`);
  }
}

type InsertArgs = [
  room: string,
  seq: number,
  nick: string,
  text: string,
  sentAt: number,
  session: string,
  clientId: string | null,
  userId: string | null,
  kind: string | null,
  replyTo: number | null,
  mentions: string | null,
];

const SELECT_POST =
  "SELECT room, seq, nick, text, sent_at, user_id, kind, reply_to, mentions, edited_at, deleted, reactions FROM messages";

/**
 * SQLite's `synchronous` in WAL mode. Every value keeps an acked message through a crash of the
 * server process (the write has reached the OS). `normal` also keeps the file intact through a crash
 * of the machine; `full` also keeps the last acked messages then; `off` writes fastest.
 */
export type DbSync = "off" | "normal" | "full";

/** How far back in a room a resumed session's message ids are looked for after a restart. */
export const DEDUPE_SCAN_ROWS = 20_000;

/** The WAL's automatic checkpoint, in pages (4 KiB): about 80 MiB of WAL under load that never pauses. */
export const WAL_AUTOCHECKPOINT_PAGES = 20_000;

/** What the WAL file is cut back to after a checkpoint. */
const WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;

/** Rows one DELETE of a prune removes. */
const PRUNE_CHUNK = 1000;

/** How long the lock file's own short writes may make another opener wait (they take microseconds). */
const LOCK_WAIT_MS = 2000;

/** Another server process has the database open; found before anything is read from it. */
export class DatabaseInUse extends Error {
  constructor(
    readonly path: string,
    readonly pid: number | undefined,
  ) {
    super(`${path} is in use by another server process (pid ${pid ?? "unknown"})`);
    this.name = "DatabaseInUse";
  }
}

/** The database file is damaged: PRAGMA quick_check found problems, or SQLite cannot read it at all. */
export class DatabaseDamaged extends Error {
  constructor(
    readonly path: string,
    readonly detail: string,
  ) {
    super(`${path} is damaged (${detail})`);
    this.name = "DatabaseDamaged";
  }
}

/** SQLITE_CORRUPT, SQLITE_NOTADB and their extended codes: the file itself is bad. */
function isDamage(err: unknown): boolean {
  const code = sqliteErrorCode(err);
  return code !== undefined && (code.startsWith("SQLITE_CORRUPT") || code.startsWith("SQLITE_NOTADB"));
}

/** The database file as a clean close left it; any later change to it (or a crash) makes it differ. */
interface FileStamp {
  ino: string;
  size: string;
  mtimeNs: string;
  ctimeNs: string;
}

function stampOf(path: string): FileStamp | undefined {
  try {
    const st = statSync(path, { bigint: true });
    return {
      ino: String(st.ino),
      size: String(st.size),
      mtimeNs: String(st.mtimeNs),
      ctimeNs: String(st.ctimeNs),
    };
  } catch {
    return undefined;
  }
}

function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

function parseStamp(text: string | null | undefined): FileStamp | undefined {
  if (!text) return undefined;
  try {
    const v = JSON.parse(text) as Partial<FileStamp>;
    const fields = [v.ino, v.size, v.mtimeNs, v.ctimeNs];
    return fields.every((f) => typeof f === "string") ? (v as FileStamp) : undefined;
  } catch {
    return undefined;
  }
}

/** Flushes a closed database file to disk (DB_SYNC=off never does), so a clean close is one on disk. */
function synced(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    fsyncSync(fd);
    return true;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** A write-ahead log with frames in it: left by a crash, or by a close that could not checkpoint. */
function walHasFrames(path: string): boolean {
  try {
    return statSync(`${path}-wal`).size > 0;
  } catch {
    return false;
  }
}

/**
 * Keeps every other process (and every other SqliteStore of this one) off a database file for as
 * long as it is held: an open write transaction on a small SQLite file beside it, `DB_PATH.lock`.
 * That is a lock of the kernel's, so it goes with the process: kill -9 never blocks a restart, and
 * a reused pid fools nothing. The file also names the holder's pid for the refusal message, and
 * whether, and as what file, the last holder closed the database cleanly. It is never deleted (a
 * process could be waiting on the deleted one while a third creates a new one).
 */
class ProcessLock {
  private readonly db: SqlDatabase;
  /** The database file as the previous holder's clean close left it; undefined after a crash. */
  readonly previousClean: FileStamp | undefined;

  constructor(lockPath: string, dbPath: string, driver: SqliteDriver) {
    this.db = driver.open(lockPath);
    try {
      this.db.run(`PRAGMA busy_timeout = ${LOCK_WAIT_MS}`);
      this.db.run("CREATE TABLE IF NOT EXISTS holder (pid INTEGER NOT NULL, clean_close TEXT)");
      this.take(dbPath);
      const row = this.db.query<{ clean_close: string | null }, []>("SELECT clean_close FROM holder").get();
      this.previousClean = parseStamp(row?.clean_close);
      // From here until a clean close, the database counts as not cleanly closed.
      this.db.run("DELETE FROM holder");
      this.db.run("INSERT INTO holder (pid, clean_close) VALUES (?, NULL)", [process.pid]);
      this.db.run("COMMIT");
      // Another process may take the lock between that commit and this: it then names itself.
      this.take(dbPath);
    } catch (err) {
      this.db.close();
      throw err;
    }
  }

  /** BEGIN IMMEDIATE, failing at once (no busy wait) when another connection holds it. */
  private take(dbPath: string): void {
    this.db.run("PRAGMA busy_timeout = 0");
    try {
      this.db.run("BEGIN IMMEDIATE");
    } catch (err) {
      if (sqliteErrorCode(err) !== "SQLITE_BUSY") throw err;
      this.db.run(`PRAGMA busy_timeout = ${LOCK_WAIT_MS}`);
      let pid: number | undefined;
      try {
        pid = this.db.query<{ pid: number }, []>("SELECT pid FROM holder").get()?.pid;
      } catch {
        pid = undefined;
      }
      throw new DatabaseInUse(dbPath, pid);
    }
    this.db.run(`PRAGMA busy_timeout = ${LOCK_WAIT_MS}`);
  }

  /**
   * Lets the lock go, recording `clean` (the database file as this process left it) if given.
   * Never throws: should the record fail, the next open only checks the file.
   */
  release(clean: FileStamp | undefined): void {
    try {
      if (clean) this.db.run("UPDATE holder SET clean_close = ?", [JSON.stringify(clean)]);
      this.db.run(clean ? "COMMIT" : "ROLLBACK");
    } catch {
      // Closing rolls back, and lets the lock go all the same.
    }
    this.db.close();
  }
}

/**
 * Reads a file front to back so that the OS caches it: PRAGMA quick_check then finds its pages in
 * memory instead of seeking for each. Skipped when the file would not fit in half the free memory.
 * Only before SQLite opens the file: closing another descriptor of it would drop SQLite's locks.
 */
function readAhead(path: string): void {
  let fd: number | undefined;
  try {
    if (statSync(path).size > freemem() / 2) return;
    fd = openSync(path, "r");
    const chunk = Buffer.allocUnsafe(8 * 1024 * 1024);
    for (let pos = 0; readSync(fd, chunk, 0, chunk.length, pos) === chunk.length; pos += chunk.length) {}
  } catch {
    // Only a speed-up: the check reads the file anyway.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The problems PRAGMA quick_check reports, or undefined when it says ok. */
function quickCheck(db: SqlDatabase): string | undefined {
  const rows = db.query<{ quick_check: string }, []>("PRAGMA quick_check(20)").all();
  const problems = rows.map((r) => r.quick_check).filter((line) => line !== "ok" && !line.startsWith("***"));
  if (problems.length === 0) return undefined;
  const more = problems.length > 1 ? ` and ${problems.length - 1} more` : "";
  return `PRAGMA quick_check: ${problems[0]}${more}`;
}

function toPost(r: Row): Post {
  const post: Post = {
    type: "chat",
    room: r.room,
    seq: r.seq,
    nick: r.nick,
    text: r.text,
    sentAt: new Date(r.sent_at).toISOString(),
  };
  if (r.user_id !== null) {
    withV2(post, r.user_id, r.kind, r.reply_to, r.mentions === null ? null : JSON.parse(r.mentions));
  }
  // Each only when it applies, so a post no change touched keeps its JSON (v1's, for a v1 post).
  if (r.edited_at !== null) post.editedAt = new Date(r.edited_at).toISOString();
  if (r.deleted) post.deleted = true;
  if (r.reactions !== null) {
    const reactions = JSON.parse(r.reactions) as StoredReaction[];
    if (reactions.length > 0) post.reactions = reactions;
  }
  return post;
}

export class SqliteStore implements ChatStore {
  /** Protected so a test subclass can reach the connection (PRAGMA max_page_count makes it really full). */
  protected readonly db: SqlDatabase;
  readonly users: SqliteUsers;
  private readonly changeRows: SqliteChanges;
  /**
   * How long PRAGMA quick_check took at open, in ms; undefined when it was not run: in memory, or
   * when the previous server closed the file cleanly and nothing changed it since.
   */
  readonly checkMs: number | undefined;
  private readonly lock: ProcessLock | undefined;
  private closed = false;
  /** Storage failed in a way that may have damaged the file: the next open checks it. */
  private suspect = false;
  /** Where an unfinished prune stopped, to go on from there when called again alike. */
  private pruneAt: { keep: number; olderThan: number; room: string } | undefined;
  private readonly q: {
    lastSeq: Statement<{ seq: number | null }, [string]>;
    firstSeq: Statement<{ seq: number | null }, [string]>;
    roomFrom: Statement<{ room: string }, [string]>;
    roomAfter: Statement<{ room: string }, [string]>;
    newestAt: Statement<{ seq: number }, [string, number]>;
    oldest: Statement<{ seq: number; sent_at: number }, [string, number, number]>;
    deleteUpTo: Statement<unknown, [string, number]>;
    deleteMentionsUpTo: Statement<unknown, [string, number]>;
    before: Statement<Row, [string, number, number]>;
    after: Statement<Row, [string, number, number]>;
    post: Statement<Row, [string, number]>;
    insert: Statement<unknown, InsertArgs>;
    insertMention: Statement<unknown, [string, string, number]>;
    upsertSession: Statement<unknown, [string, string, string, number | null]>;
    session: Statement<{ id: string; room: string; nick: string; ended_at: number | null }, [string]>;
    clientIds: Statement<{ client_id: string; seq: number }, [string, number, string, number]>;
    dropSessions: Statement<unknown, [number]>;
  };
  private readonly commitTx: (
    messages: readonly StoredMessage[],
    sessions: readonly SessionRecord[],
    changes: readonly StoredChange[],
  ) => void;
  private readonly pruneTx: (keep: number, olderThan: number, work: number) => PruneStep;
  /** Deletes a room's messages up to a seq, and their mentions with them; answers the messages deleted. */
  private readonly deleteTx: (room: string, upTo: number) => number;

  /**
   * Opens (creating) the database; sessions left open by a crash count as ended now. Throws
   * DatabaseInUse when another process (or store) has the file open, and DatabaseDamaged when
   * PRAGMA quick_check finds it damaged: run unless the previous server closed it cleanly and it
   * has not changed since. Refusing writes nothing to the file.
   */
  constructor(
    readonly path: string,
    now = Date.now(),
    sync: DbSync = "normal",
    driver: SqliteDriver = runtimeSqlite(),
  ) {
    const inMemory = path === ":memory:" || path === "";
    this.lock = inMemory
      ? undefined
      : new ProcessLock(`${existsSync(path) ? realpathSync(path) : path}.lock`, path, driver);
    try {
      const clean = this.lock?.previousClean;
      const stamp = stampOf(path);
      const trusted =
        clean !== undefined && stamp !== undefined && sameStamp(clean, stamp) && !walHasFrames(path);
      const check = !inMemory && !trusted;
      const t0 = performance.now();
      if (check) readAhead(path);
      this.db = driver.open(path);
      try {
        this.db.run("PRAGMA busy_timeout = 5000");
        if (check) {
          const problems = quickCheck(this.db);
          if (problems !== undefined) throw new DatabaseDamaged(path, problems);
          this.checkMs = performance.now() - t0;
        }
        // One connection of one process ever uses the file (ProcessLock), so nobody needs the shared
        // wal-index: exclusive mode keeps it in memory and skips the shm locks of every transaction
        // (about 2 µs of a 8-10 µs commit here). It must come before WAL is switched on.
        if (!inMemory) this.db.run("PRAGMA locking_mode = EXCLUSIVE");
        this.db.run("PRAGMA journal_mode = WAL");
        this.db.run(`PRAGMA synchronous = ${sync.toUpperCase()}`);
        // What a delete or a prune removes is zeroed in its page, not left in free space: a deleted
        // post's text is gone from the file once its pages are checkpointed (no extra I/O).
        this.db.run("PRAGMA secure_delete = FAST");
        // Checkpoints run when the writer is idle (`checkpoint`); the automatic one, every
        // WAL_AUTOCHECKPOINT_PAGES, only bounds the WAL under load that never pauses. A hot page
        // written by many commits is then copied once, not once per 1,000 pages (the default).
        this.db.run(`PRAGMA wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
        this.db.run(`PRAGMA journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
        this.db.exec(SCHEMA);
        migrateMessages(this.db);
        this.db.exec(CHANGES_SCHEMA);
        this.db.exec(USERS_SCHEMA);
        this.db.run("INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', ?)", [randomToken(9)]);
        this.db.run("UPDATE sessions SET ended_at = ? WHERE ended_at IS NULL", [now]);
      } catch (err) {
        this.db.close();
        throw err;
      }
    } catch (err) {
      this.lock?.release(undefined);
      if (isDamage(err)) throw new DatabaseDamaged(path, `SQLite: ${(err as Error).message}`);
      throw err;
    }
    this.q = {
      lastSeq: this.db.query("SELECT max(seq) AS seq FROM messages WHERE room = ?"),
      firstSeq: this.db.query("SELECT min(seq) AS seq FROM messages WHERE room = ?"),
      roomFrom: this.db.query("SELECT room FROM messages WHERE room >= ? ORDER BY room LIMIT 1"),
      roomAfter: this.db.query("SELECT room FROM messages WHERE room > ? ORDER BY room LIMIT 1"),
      newestAt: this.db.query("SELECT seq FROM messages WHERE room = ? ORDER BY seq DESC LIMIT 1 OFFSET ?"),
      oldest: this.db.query(
        "SELECT seq, sent_at FROM messages WHERE room = ? AND seq < ? ORDER BY seq LIMIT ?",
      ),
      deleteUpTo: this.db.query("DELETE FROM messages WHERE room = ? AND seq <= ?"),
      deleteMentionsUpTo: this.db.query("DELETE FROM mentions WHERE room = ? AND seq <= ?"),
      before: this.db.query(`${SELECT_POST} WHERE room = ? AND seq < ? ORDER BY seq DESC LIMIT ?`),
      after: this.db.query(`${SELECT_POST} WHERE room = ? AND seq > ? ORDER BY seq DESC LIMIT ?`),
      post: this.db.query(`${SELECT_POST} WHERE room = ? AND seq = ?`),
      insert: this.db.query(
        "INSERT INTO messages (room, seq, nick, text, sent_at, session, client_id, user_id, kind, reply_to, mentions) " +
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      ),
      insertMention: this.db.query("INSERT OR IGNORE INTO mentions (room, user_id, seq) VALUES (?, ?, ?)"),
      upsertSession: this.db.query(
        "INSERT INTO sessions (id, room, nick, ended_at) VALUES (?, ?, ?, ?) " +
          "ON CONFLICT (id) DO UPDATE SET room = excluded.room, nick = excluded.nick, ended_at = excluded.ended_at",
      ),
      session: this.db.query("SELECT id, room, nick, ended_at FROM sessions WHERE id = ?"),
      clientIds: this.db.query(
        "SELECT client_id, seq FROM (SELECT client_id, seq, session FROM messages WHERE room = ? ORDER BY seq DESC LIMIT ?) " +
          "WHERE session = ? AND client_id IS NOT NULL ORDER BY seq DESC LIMIT ?",
      ),
      dropSessions: this.db.query("DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at < ?"),
    };
    this.changeRows = new SqliteChanges(this.db);
    this.commitTx = this.db.transaction((messages, sessions, changes) => {
      for (const m of messages) {
        const mentions = m.mentions;
        this.q.insert.run(
          m.room,
          m.seq,
          m.nick,
          m.text,
          m.sentAt,
          m.session,
          m.clientId,
          m.userId ?? null,
          m.kind ?? null,
          m.replyTo ?? null,
          mentions == null || mentions.length === 0 ? null : JSON.stringify(mentions),
        );
        if (m.mentionIds) {
          for (const id of m.mentionIds) if (id !== m.userId) this.q.insertMention.run(m.room, id, m.seq);
        }
      }
      for (const s of sessions) this.q.upsertSession.run(s.id, s.room, s.nick, s.endedAt);
      // After the messages: a change may be to a post of this very batch.
      this.changeRows.write(changes);
    });
    this.pruneTx = this.db.transaction((keep, olderThan, work) => this.pruneRooms(keep, olderThan, work));
    this.deleteTx = this.db.transaction((room, upTo) => {
      this.q.deleteMentionsUpTo.run(room, upTo);
      return this.q.deleteUpTo.run(room, upTo).changes;
    });
    this.users = new SqliteUsers(this.db, (err) => this.failed(err));
  }

  lastSeq(room: string): number {
    try {
      return this.q.lastSeq.get(room)?.seq ?? 0;
    } catch (err) {
      throw this.failed(err);
    }
  }

  before(room: string, before: number, limit: number): Page {
    try {
      return this.page(this.q.before.all(room, before, limit + 1), limit);
    } catch (err) {
      throw this.failed(err);
    }
  }

  after(room: string, after: number, limit: number): Page {
    try {
      return this.page(this.q.after.all(room, after, limit + 1), limit);
    } catch (err) {
      throw this.failed(err);
    }
  }

  /** Rows come newest first with one extra to tell whether more exist. */
  private page(rows: Row[], limit: number): Page {
    const more = rows.length > limit;
    const kept = more ? rows.slice(0, limit) : rows;
    kept.reverse();
    return { messages: kept.map(toPost), more };
  }

  commit(
    messages: readonly StoredMessage[],
    sessions: readonly SessionRecord[],
    changes: readonly StoredChange[] = [],
  ): void {
    if (messages.length === 0 && sessions.length === 0 && changes.length === 0) return;
    this.changeRows.check(changes);
    try {
      this.commitTx(messages, sessions, changes);
    } catch (err) {
      throw this.failed(err);
    }
  }

  post(room: string, seq: number): Post | undefined {
    try {
      const row = this.q.post.get(room, seq);
      return row ? toPost(row) : undefined;
    } catch (err) {
      throw this.failed(err);
    }
  }

  changes(room: string, sinceRev: number, upTo: number, limit: number): ChangePage {
    try {
      return this.changeRows.changes(room, sinceRev, upTo, limit);
    } catch (err) {
      throw this.failed(err);
    }
  }

  roomMeta(room: string): { lastRev: number; topic: string } {
    try {
      return this.changeRows.roomMeta(room);
    } catch (err) {
      throw this.failed(err);
    }
  }

  loadSession(id: string): SessionRecord | undefined {
    const r = this.q.session.get(id);
    return r ? { id: r.id, room: r.room, nick: r.nick, endedAt: r.ended_at } : undefined;
  }

  recentClientIds(session: string, room: string, limit: number): Array<[string, number]> {
    return this.q.clientIds.all(room, DEDUPE_SCAN_ROWS, session, limit).map((r) => [r.client_id, r.seq]);
  }

  dropSessions(endedBefore: number): void {
    this.q.dropSessions.run(endedBefore);
  }

  prune(keepPerRoom: number, olderThanMs: number): number {
    return this.pruneStep(keepPerRoom, olderThanMs, Number.POSITIVE_INFINITY).deleted;
  }

  /**
   * Rooms in name order, from where the last unfinished step with the same arguments stopped. A
   * step is one transaction: rows of many rooms share pages, each then written once.
   */
  pruneStep(keepPerRoom: number, olderThanMs: number, work: number): PruneStep {
    if (keepPerRoom <= 0 && olderThanMs <= 0) return { deleted: 0, done: true };
    try {
      // Unbounded (prune): a transaction per DELETE of PRUNE_CHUNK rows, so none grows huge.
      if (!Number.isFinite(work)) return this.pruneRooms(keepPerRoom, olderThanMs, work);
      return this.pruneTx(keepPerRoom, olderThanMs, work);
    } catch (err) {
      throw this.failed(err);
    }
  }

  private pruneRooms(keepPerRoom: number, olderThanMs: number, work: number): PruneStep {
    const at = this.pruneAt;
    const from = at && at.keep === keepPerRoom && at.olderThan === olderThanMs ? at.room : "";
    this.pruneAt = undefined;
    let deleted = 0;
    let used = 0;
    for (let room = this.q.roomFrom.get(from)?.room; room !== undefined; ) {
      // Looking at a room is one unit; each step deletes at least a row of one, so it moves on.
      const budget = Math.max(1, work - used - 1);
      const n = this.pruneRoom(room, keepPerRoom, olderThanMs, budget);
      deleted += n;
      used += 1 + n;
      const next = n < budget ? this.q.roomAfter.get(room)?.room : room;
      if (next !== undefined && used >= work) {
        this.pruneAt = { keep: keepPerRoom, olderThan: olderThanMs, room: next };
        return { deleted, done: false };
      }
      room = next;
    }
    return { deleted, done: true };
  }

  /**
   * Deletes from the oldest while a message is beyond the newest `keep` or older than `olderThan`.
   * The changes of the posts deleted stay (sqlite-changes.ts): a room's revs stay one unbroken run.
   */
  private pruneRoom(room: string, keep: number, olderThan: number, budget: number): number {
    const newest = this.q.lastSeq.get(room)?.seq;
    if (newest === null || newest === undefined) return 0;
    // Every message below `bound` is beyond the newest `keep`. Seqs are unique, so a room whose
    // span of seqs is within `keep` has no more than `keep` messages.
    let bound = 0;
    if (keep > 0 && newest - (this.q.firstSeq.get(room)?.seq ?? newest) + 1 > keep) {
      bound = this.q.newestAt.get(room, keep - 1)?.seq ?? 0;
    }
    if (bound === 0 && olderThan <= 0) return 0;
    let deleted = 0;
    // Reads grow from a few rows: most rooms have nothing to delete, and their oldest row says so.
    for (let read = 16; deleted < budget; read = Math.min(read * 4, PRUNE_CHUNK)) {
      const n = Math.min(read, budget - deleted);
      // The newest message is never a candidate: the room's seq must survive a restart.
      const rows = this.q.oldest.all(room, newest, n);
      let k = 0;
      for (const r of rows) {
        if (r.seq >= bound && !(olderThan > 0 && r.sent_at < olderThan)) break;
        k++;
      }
      if (k > 0) deleted += this.deleteTx(room, (rows[k - 1] as { seq: number }).seq);
      if (k < n) break;
    }
    return deleted;
  }

  epoch(): string {
    const row = this.db.query("SELECT value FROM meta WHERE key = 'epoch'").get() as { value: string } | null;
    return row?.value ?? "";
  }

  /** Copies the WAL into the database (PASSIVE: never waits); the writer calls it when idle. */
  checkpoint(): void {
    this.db.run("PRAGMA wal_checkpoint(PASSIVE)");
  }

  /** Closes the database, then the lock, recording a clean close unless storage failed meanwhile. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.db.close();
    } finally {
      if (this.lock) {
        const clean = !this.suspect && !walHasFrames(this.path) && synced(this.path);
        this.lock.release(clean ? stampOf(this.path) : undefined);
      }
    }
  }

  /** A storage error: anything but a broken constraint may have come from a damaged file. */
  private failed(err: unknown): unknown {
    if (!sqliteErrorCode(err)?.startsWith("SQLITE_CONSTRAINT")) this.suspect = true;
    return err;
  }
}
