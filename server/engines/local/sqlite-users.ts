/**
 * v2's users in the chat's SQLite database (UserTables): users, their rooms with read markers,
 * direct rooms, the identity key. Each change is one small transaction, committed before `done` is
 * called, so what a client was told survives kill -9 as messages do.
 */
import type { Done } from "../../chat/engine";
import { randomToken } from "../../chat/tokens";
import type { Ban, CountQuery, Counts, JoinOutcome, Membership, UserRecord } from "../../chat/users";
import { BANS_SCHEMA, SqliteBans } from "./sqlite-bans";
import type { SqlDatabase, SqlStatement as Statement } from "./sqlite-driver";
import { answer, type UserTables } from "./store";

export const USERS_SCHEMA = `
CREATE TABLE IF NOT EXISTS users (
  user_id TEXT PRIMARY KEY,
  nick TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
) WITHOUT ROWID;
-- A rowid table: a user's rooms are listed in join order, the rowid breaking ties within a millisecond.
CREATE TABLE IF NOT EXISTS memberships (
  user_id TEXT NOT NULL,
  room TEXT NOT NULL,
  read_seq INTEGER NOT NULL,
  peer TEXT,
  joined_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, room)
);
-- a <= b: one row per unordered pair.
CREATE TABLE IF NOT EXISTS direct_rooms (room TEXT PRIMARY KEY, a TEXT NOT NULL, b TEXT NOT NULL) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS direct_rooms_by_pair ON direct_rooms (a, b);
${BANS_SCHEMA}`;

/**
 * The counts of one room: each walks an index range ((room, seq) of messages, the key of mentions)
 * and stops at the cap, so a room costs at most `cap` counted steps whatever its backlog (deleted
 * posts and the user's own are stepped over uncounted; a delete drops its post's mention rows).
 * Params: room, readSeq, upTo, userId, cap.
 */
export const UNREAD_SQL =
  "SELECT count(*) AS n FROM (SELECT 1 FROM messages WHERE room = ? AND seq > ? AND seq <= ? " +
  "AND deleted = 0 AND (user_id IS NULL OR user_id <> ?) LIMIT ?)";
/** Params: userId, room, readSeq, upTo, cap. */
export const MENTIONED_SQL =
  "SELECT count(*) AS n FROM (SELECT 1 FROM mentions WHERE user_id = ? AND room = ? AND seq > ? AND seq <= ? LIMIT ?)";

export class SqliteUsers implements UserTables {
  private key: string | undefined;
  private readonly bans: SqliteBans;
  private readonly q: {
    key: Statement<{ value: string }, []>;
    addKey: Statement<unknown, [string]>;
    create: Statement<unknown, [string, string, number]>;
    user: Statement<{ nick: string; revoked_at: number | null }, [string]>;
    rooms: Statement<{ room: string; read_seq: number; peer: string | null }, [string]>;
    revoke: Statement<unknown, [number, string]>;
    dropRooms: Statement<unknown, [string]>;
    rename: Statement<unknown, [string, string]>;
    member: Statement<{ one: number }, [string, string]>;
    roomCount: Statement<{ n: number }, [string]>;
    join: Statement<unknown, [string, string, number, string | null, number]>;
    part: Statement<unknown, [string, string]>;
    read: Statement<{ read_seq: number }, [number, string, string]>;
    unread: Statement<{ n: number }, [string, number, number, string, number]>;
    mentioned: Statement<{ n: number }, [string, string, number, number, number]>;
    direct: Statement<{ room: string }, [string, string]>;
    addDirect: Statement<unknown, [string, string, string]>;
    pair: Statement<{ a: string; b: string }, [string]>;
  };
  private readonly revokeTx: (userId: string) => boolean;
  private readonly joinTx: (userId: string, m: Membership, max: number) => JoinOutcome;
  private readonly directTx: (a: string, b: string, name: () => string) => string;

  /** `failed` sees every storage error before `done` does (the store marks itself suspect). */
  constructor(
    db: SqlDatabase,
    private readonly failed: (err: unknown) => unknown,
  ) {
    this.q = {
      key: db.query("SELECT value FROM meta WHERE key = 'identity_key'"),
      addKey: db.query("INSERT OR IGNORE INTO meta (key, value) VALUES ('identity_key', ?)"),
      create: db.query("INSERT OR IGNORE INTO users (user_id, nick, created_at) VALUES (?, ?, ?)"),
      user: db.query("SELECT nick, revoked_at FROM users WHERE user_id = ?"),
      rooms: db.query(
        "SELECT room, read_seq, peer FROM memberships WHERE user_id = ? ORDER BY joined_at, rowid",
      ),
      revoke: db.query("UPDATE users SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL"),
      dropRooms: db.query("DELETE FROM memberships WHERE user_id = ?"),
      rename: db.query("UPDATE users SET nick = ? WHERE user_id = ?"),
      member: db.query("SELECT 1 AS one FROM memberships WHERE user_id = ? AND room = ?"),
      roomCount: db.query("SELECT count(*) AS n FROM memberships WHERE user_id = ?"),
      join: db.query(
        "INSERT INTO memberships (user_id, room, read_seq, peer, joined_at) VALUES (?, ?, ?, ?, ?)",
      ),
      part: db.query("DELETE FROM memberships WHERE user_id = ? AND room = ?"),
      read: db.query(
        "UPDATE memberships SET read_seq = max(read_seq, ?) WHERE user_id = ? AND room = ? RETURNING read_seq",
      ),
      unread: db.query(UNREAD_SQL),
      mentioned: db.query(MENTIONED_SQL),
      direct: db.query("SELECT room FROM direct_rooms WHERE a = ? AND b = ?"),
      addDirect: db.query("INSERT INTO direct_rooms (room, a, b) VALUES (?, ?, ?)"),
      pair: db.query("SELECT a, b FROM direct_rooms WHERE room = ?"),
    };
    this.bans = new SqliteBans(db);
    this.revokeTx = db.transaction((userId: string) => {
      if (this.q.revoke.run(Date.now(), userId).changes === 0) return false;
      this.q.dropRooms.run(userId);
      return true;
    });
    this.joinTx = db.transaction((userId: string, m: Membership, max: number): JoinOutcome => {
      if (this.q.member.get(userId, m.room)) return "member";
      if ((this.q.roomCount.get(userId)?.n ?? 0) >= max) return "full";
      this.q.join.run(userId, m.room, m.readSeq, m.peer ?? null, Date.now());
      return "joined";
    });
    this.directTx = db.transaction((a: string, b: string, name: () => string) => {
      const [x, y] = a <= b ? [a, b] : [b, a];
      const found = this.q.direct.get(x, y);
      if (found) return found.room;
      const room = name();
      this.q.addDirect.run(room, x, y);
      return room;
    });
  }

  identityKey(done: Done<string>): void {
    answer(
      done,
      () => {
        if (this.key === undefined) {
          this.q.addKey.run(randomToken(32));
          const row = this.q.key.get();
          if (!row) throw new Error("identity key not stored");
          this.key = row.value;
        }
        return this.key;
      },
      this.failed,
    );
  }

  create(userId: string, nick: string, done: Done<void>): void {
    answer(done, () => void this.q.create.run(userId, nick, Date.now()), this.failed);
  }

  load(userId: string, done: Done<UserRecord | undefined>): void {
    answer(
      done,
      () => {
        const user = this.q.user.get(userId);
        if (!user || user.revoked_at !== null) return undefined;
        const rooms = this.q.rooms
          .all(userId)
          .map(
            (r): Membership =>
              r.peer === null
                ? { room: r.room, readSeq: r.read_seq }
                : { room: r.room, readSeq: r.read_seq, peer: r.peer },
          );
        return { userId, nick: user.nick, rooms };
      },
      this.failed,
    );
  }

  nicks(userIds: readonly string[], done: Done<Map<string, string>>): void {
    answer(
      done,
      () => {
        const out = new Map<string, string>();
        for (const id of userIds) {
          const user = this.q.user.get(id);
          if (user) out.set(id, user.nick);
        }
        return out;
      },
      this.failed,
    );
  }

  revoke(userId: string, done: Done<boolean>): void {
    answer(done, () => this.revokeTx(userId), this.failed);
  }

  rename(userId: string, nick: string, done: Done<void>): void {
    answer(done, () => void this.q.rename.run(nick, userId), this.failed);
  }

  join(userId: string, m: Membership, max: number, done: Done<JoinOutcome>): void {
    answer(done, () => this.joinTx(userId, m, max), this.failed);
  }

  part(userId: string, room: string, done: Done<boolean>): void {
    answer(done, () => this.q.part.run(userId, room).changes > 0, this.failed);
  }

  read(userId: string, room: string, seq: number, done: Done<number | undefined>): void {
    answer(done, () => this.q.read.get(seq, userId, room)?.read_seq, this.failed);
  }

  counts(userId: string, queries: readonly CountQuery[], cap: number, done: Done<Counts[]>): void {
    answer(
      done,
      () =>
        queries.map(({ room, readSeq, upTo }) => {
          if (cap <= 0 || upTo <= readSeq) return { unread: 0, mentions: 0 };
          return {
            unread: this.q.unread.get(room, readSeq, upTo, userId, cap)?.n ?? 0,
            mentions: this.q.mentioned.get(userId, room, readSeq, upTo, cap)?.n ?? 0,
          };
        }),
      this.failed,
    );
  }

  directRoom(a: string, b: string, name: () => string, done: Done<string>): void {
    answer(done, () => this.directTx(a, b, name), this.failed);
  }

  directPair(room: string, done: Done<readonly [string, string] | undefined>): void {
    answer(
      done,
      () => {
        const row = this.q.pair.get(room);
        return row ? ([row.a, row.b] as const) : undefined;
      },
      this.failed,
    );
  }

  ban(room: string, ban: Ban, done: Done<void>): void {
    answer(done, () => this.bans.ban(room, ban), this.failed);
  }

  unban(room: string, userId: string, done: Done<boolean>): void {
    answer(done, () => this.bans.unban(room, userId), this.failed);
  }

  banned(
    room: string,
    who: { userId?: string | undefined; nickKey?: string | undefined },
    now: number,
    done: Done<Ban | undefined>,
  ): void {
    answer(done, () => this.bans.banned(room, who, now), this.failed);
  }
}
