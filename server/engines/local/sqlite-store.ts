/** ChatStore on bun:sqlite in WAL mode: one transaction per flush, so an ack means the row is durable. */
import { Database, type Statement } from "bun:sqlite";
import type { ChatMessage } from "../../../protocol";
import type { ChatStore, Page, SessionRecord, StoredMessage } from "./store";

interface Row {
  room: string;
  seq: number;
  nick: string;
  text: string;
  sent_at: number;
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
`;

/**
 * SQLite's `synchronous` in WAL mode. Every value keeps an acked message through a crash of the
 * server process (the write has reached the OS). `normal` also keeps the file intact through a crash
 * of the machine; `full` also keeps the last acked messages then; `off` writes fastest.
 */
export type DbSync = "off" | "normal" | "full";

/** How far back in a room a resumed session's message ids are looked for after a restart. */
export const DEDUPE_SCAN_ROWS = 20_000;

function toChat(r: Row): ChatMessage {
  return {
    type: "chat",
    room: r.room,
    seq: r.seq,
    nick: r.nick,
    text: r.text,
    sentAt: new Date(r.sent_at).toISOString(),
  };
}

export class SqliteStore implements ChatStore {
  /** Protected so a test subclass can reach the connection (PRAGMA max_page_count makes it really full). */
  protected readonly db: Database;
  private readonly q: {
    lastSeq: Statement<{ seq: number | null }, [string]>;
    before: Statement<Row, [string, number, number]>;
    after: Statement<Row, [string, number, number]>;
    insert: Statement<unknown, [string, number, string, string, number, string, string | null]>;
    upsertSession: Statement<unknown, [string, string, string, number | null]>;
    session: Statement<{ id: string; room: string; nick: string; ended_at: number | null }, [string]>;
    clientIds: Statement<{ client_id: string; seq: number }, [string, number, string, number]>;
    dropSessions: Statement<unknown, [number]>;
  };
  private readonly commitTx: (messages: readonly StoredMessage[], sessions: readonly SessionRecord[]) => void;

  /** Opens (creating) the database; sessions left open by a crash count as ended now. */
  constructor(path: string, now = Date.now(), sync: DbSync = "normal") {
    this.db = new Database(path, { create: true, strict: true });
    this.db.run("PRAGMA journal_mode = WAL");
    this.db.run(`PRAGMA synchronous = ${sync.toUpperCase()}`);
    this.db.run("PRAGMA busy_timeout = 5000");
    this.db.run(SCHEMA);
    this.db.run("UPDATE sessions SET ended_at = ? WHERE ended_at IS NULL", [now]);
    this.q = {
      lastSeq: this.db.query("SELECT max(seq) AS seq FROM messages WHERE room = ?"),
      before: this.db.query(
        "SELECT room, seq, nick, text, sent_at FROM messages WHERE room = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
      ),
      after: this.db.query(
        "SELECT room, seq, nick, text, sent_at FROM messages WHERE room = ? AND seq > ? ORDER BY seq DESC LIMIT ?",
      ),
      insert: this.db.query(
        "INSERT INTO messages (room, seq, nick, text, sent_at, session, client_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
      ),
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
    this.commitTx = this.db.transaction((messages, sessions) => {
      for (const m of messages) {
        this.q.insert.run(m.room, m.seq, m.nick, m.text, m.sentAt, m.session, m.clientId);
      }
      for (const s of sessions) this.q.upsertSession.run(s.id, s.room, s.nick, s.endedAt);
    });
  }

  lastSeq(room: string): number {
    return this.q.lastSeq.get(room)?.seq ?? 0;
  }

  before(room: string, before: number, limit: number): Page {
    return this.page(this.q.before.all(room, before, limit + 1), limit);
  }

  after(room: string, after: number, limit: number): Page {
    return this.page(this.q.after.all(room, after, limit + 1), limit);
  }

  /** Rows come newest first with one extra to tell whether more exist. */
  private page(rows: Row[], limit: number): Page {
    const more = rows.length > limit;
    const kept = more ? rows.slice(0, limit) : rows;
    kept.reverse();
    return { messages: kept.map(toChat), more };
  }

  commit(messages: readonly StoredMessage[], sessions: readonly SessionRecord[]): void {
    if (messages.length === 0 && sessions.length === 0) return;
    this.commitTx(messages, sessions);
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

  close(): void {
    this.db.close();
  }
}
