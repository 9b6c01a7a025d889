/**
 * Bans from rooms in the chat's SQLite database, for SqliteUsers: one row per room and key (a v2
 * user's id, or v1:NICKKEY for a v1 nick), each written at once (autocommit), so it is as durable
 * as a message when its caller is answered.
 */
import type { Ban } from "../../chat/users";
import type { SqlDatabase, SqlStatement as Statement } from "./sqlite-driver";

export const BANS_SCHEMA = `
-- Expired rows stay (bans are few): banned() looks at \`until\`.
CREATE TABLE IF NOT EXISTS bans (
  room TEXT NOT NULL,
  key TEXT NOT NULL,
  user_id TEXT,
  nick_key TEXT NOT NULL,
  until INTEGER,
  reason TEXT,
  "by" TEXT NOT NULL,
  PRIMARY KEY (room, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS bans_by_nick ON bans (room, nick_key);
`;

interface BanRow {
  user_id: string | null;
  nick_key: string;
  until: number | null;
  reason: string | null;
  by: string;
}

/** The key a ban is stored under: one ban per v2 user, and one per v1 nick, in a room. */
export function banKey(ban: Ban): string {
  return ban.userId ?? `v1:${ban.nickKey}`;
}

/**
 * Of the bans in force on a user id or a nick key, the one that ends last (a ban for ever first):
 * two index lookups (the key, and bans_by_nick). Params: room, key, nickKey, now.
 */
export const BANNED_SQL =
  'SELECT user_id, nick_key, until, reason, "by" FROM (' +
  'SELECT user_id, nick_key, until, reason, "by" FROM bans WHERE room = ?1 AND key = ?2 UNION ALL ' +
  'SELECT user_id, nick_key, until, reason, "by" FROM bans INDEXED BY bans_by_nick WHERE room = ?1 AND nick_key = ?3) ' +
  "WHERE until IS NULL OR until > ?4 ORDER BY until IS NULL DESC, until DESC LIMIT 1";

/** A ban with only the fields it has. */
function toBan(r: BanRow): Ban {
  const ban: Ban =
    r.user_id === null
      ? { nickKey: r.nick_key, until: r.until, by: r.by }
      : { userId: r.user_id, nickKey: r.nick_key, until: r.until, by: r.by };
  if (r.reason !== null) ban.reason = r.reason;
  return ban;
}

/** Throws what SQLite throws: SqliteUsers answers it through `done`. */
export class SqliteBans {
  private readonly q: {
    ban: Statement<unknown, [string, string, string | null, string, number | null, string | null, string]>;
    unban: Statement<unknown, [string, string]>;
    banned: Statement<BanRow, [string, string | null, string | null, number]>;
  };

  /**
   * The rooms with a ban stored (lifted or expired ones may linger): every connect with a nickname
   * asks, and most rooms have none, so those are answered without a query (one process holds the
   * file: ProcessLock). In a join storm the query was about a sixth of a join's CPU.
   */
  private readonly rooms = new Set<string>();
  private readonly anyIn: Statement<unknown, [string]>;

  constructor(db: SqlDatabase) {
    this.q = {
      ban: db.query(
        'INSERT OR REPLACE INTO bans (room, key, user_id, nick_key, until, reason, "by") VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      unban: db.query("DELETE FROM bans WHERE room = ? AND key = ?"),
      banned: db.query(BANNED_SQL),
    };
    this.anyIn = db.query("SELECT 1 FROM bans WHERE room = ? LIMIT 1");
    for (const row of db.query<{ room: string }, []>("SELECT DISTINCT room FROM bans").all())
      this.rooms.add(row.room);
  }

  /** Replaces the ban of the same key in that room. */
  ban(room: string, ban: Ban): void {
    this.q.ban.run(room, banKey(ban), ban.userId ?? null, ban.nickKey, ban.until, ban.reason ?? null, ban.by);
    this.rooms.add(room);
  }

  /** `key`: a user id, or v1:NICKKEY. False when the room had no ban of that key. */
  unban(room: string, key: string): boolean {
    const lifted = this.q.unban.run(room, key).changes > 0;
    if (lifted && (this.anyIn.get(room) ?? null) === null) this.rooms.delete(room);
    return lifted;
  }

  banned(
    room: string,
    who: { userId?: string | undefined; nickKey?: string | undefined },
    now: number,
  ): Ban | undefined {
    if ((who.userId === undefined && who.nickKey === undefined) || !this.rooms.has(room)) return undefined;
    const row = this.q.banned.get(room, who.userId ?? null, who.nickKey ?? null, now);
    return row ? toBan(row) : undefined;
  }
}
