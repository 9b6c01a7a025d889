/**
 * v2's user store on Redis (the core's UserStore): users, their rooms with read markers, direct rooms
 * and the identity key, each change one script of user-scripts.ts, so every process sees one state.
 * A user's own keys live in the partition its id hashes to (key-space.ts), the shared ones under
 * the users prefix.
 *
 * User events go to this process's sink at once, and to the others through one stream that every
 * process reads with the rooms' streams (stream-follower.ts): a reader that failed reads on from the
 * last event it had, and one publisher's events keep their order. Every process gets every event and
 * hands it to its sink, which looks for the user's connections there: no subscription to keep per
 * user, and a connection of a user with no rooms (so no claim anywhere) hears its user's events too.
 * Measured on loopback (Redis 7.0): 0.8 us of Redis per XADD, 0.7 us per reading process per event,
 * 0.6 ms from publish to another process's sink (median); a PUBLISH to three subscribers costs
 * 0.5 us, but loses what a subscriber misses while its connection is down.
 */
import type { Done } from "../../chat/engine";
import { describeError, type Logger } from "../../chat/log";
import { randomToken } from "../../chat/tokens";
import {
  type Ban,
  type CountQuery,
  type Counts,
  holdingBan,
  type JoinOutcome,
  type Membership,
  type UserEvent,
  type UserRecord,
  type UserStore,
} from "../../chat/users";
import type { Inflight } from "./inflight";
import type { KeySpace } from "./key-space";
import { type RedisLink, runScript } from "./redis-link";
import type { StreamFollower } from "./stream-follower";
import { entryFields, type StreamEntry } from "./stream-reader";
import {
  BAN,
  BANNED,
  COUNTS,
  CREATE,
  DIRECT_ROOM,
  IDENTITY_KEY,
  JOIN,
  LOAD,
  NICKS,
  PART,
  READ,
  RENAME,
  REVOKE,
  UNBAN,
} from "./user-scripts";

export interface RedisUsersDeps {
  link: RedisLink;
  keys: KeySpace;
  procId: string;
  /** Runs `work` once the engine is ready (in flight), then hands its outcome to `done`. */
  run: <T>(work: () => Promise<T>, done: Done<T>) => void;
  /** This process's sink for user events. */
  local: (userId: string, event: UserEvent) => void;
  inflight: Inflight;
  log: Logger;
  now: () => number;
}

/** User events kept in the stream (approximately): a process further behind misses the oldest. */
const EVENTS_MAX_LEN = "10000";

export class RedisUsers implements UserStore {
  private key: string | undefined;
  private readonly eventsKey: string;

  constructor(private readonly d: RedisUsersDeps) {
    this.eventsKey = `${d.keys.users}users:events`;
  }

  /** Reads the user events of every process from now on (call before the follower starts reading). */
  async listen(follower: StreamFollower): Promise<void> {
    const last = (await this.d.link.send("XREVRANGE", [
      this.eventsKey,
      "+",
      "-",
      "COUNT",
      "1",
    ])) as StreamEntry[];
    follower.listen(this.eventsKey, this.d.keys.users, last[0]?.[0] ?? "0-0", (entries) =>
      this.received(entries),
    );
  }

  identityKey(done: Done<string>): void {
    if (this.key !== undefined) {
      done(undefined, this.key);
      return;
    }
    this.d.run(async () => {
      this.key = String(await this.script(IDENTITY_KEY, [randomToken(32)]));
      return this.key;
    }, done);
  }

  create(userId: string, nick: string, done: Done<void>): void {
    this.d.run(async () => {
      await this.ofUser(CREATE, userId, [nick, this.d.now()]);
    }, done);
  }

  load(userId: string, done: Done<UserRecord | undefined>): void {
    this.d.run(async () => {
      const raw = (await this.ofUser(LOAD, userId, [])) as Array<string | number> | null;
      if (!raw) return undefined;
      const rooms: Membership[] = [];
      for (let i = 1; i + 2 < raw.length; i += 3) {
        const peer = String(raw[i + 2]);
        const m: Membership = { room: String(raw[i]), readSeq: Number(raw[i + 1]) };
        if (peer !== "") m.peer = peer;
        rooms.push(m);
      }
      return { userId, nick: String(raw[0]), rooms };
    }, done);
  }

  nicks(userIds: readonly string[], done: Done<Map<string, string>>): void {
    if (userIds.length === 0) {
      done(undefined, new Map());
      return;
    }
    this.d.run(async () => {
      const out = new Map<string, string>();
      await Promise.all(
        [...groupBy(userIds, (id) => this.d.keys.user(id))].map(async ([prefix, ids]) => {
          const raw = (await runScript(this.d.link, NICKS, [prefix, ...ids])) as Array<string | null>;
          ids.forEach((id, i) => {
            const nick = raw[i];
            if (typeof nick === "string") out.set(id, nick);
          });
        }),
      );
      return out;
    }, done);
  }

  revoke(userId: string, done: Done<boolean>): void {
    this.d.run(async () => (await this.ofUser(REVOKE, userId, [this.d.now()])) === 1, done);
  }

  rename(userId: string, nick: string, done: Done<void>): void {
    this.d.run(async () => {
      await this.ofUser(RENAME, userId, [nick]);
    }, done);
  }

  join(userId: string, m: Membership, max: number, done: Done<JoinOutcome>): void {
    this.d.run(
      async () => (await this.ofUser(JOIN, userId, [m.room, m.readSeq, m.peer ?? "", max])) as JoinOutcome,
      done,
    );
  }

  part(userId: string, room: string, done: Done<boolean>): void {
    this.d.run(async () => (await this.ofUser(PART, userId, [room])) === 1, done);
  }

  read(userId: string, room: string, seq: number, done: Done<number | undefined>): void {
    this.d.run(async () => {
      const stored = await this.ofUser(READ, userId, [room, seq]);
      return stored === null || stored === undefined ? undefined : Number(stored);
    }, done);
  }

  /**
   * One script per partition for all its rooms: three ZCOUNTs each (user-scripts.ts COUNTS), the
   * partitions side by side (one round trip). Read-only: each room's range is given, so nothing needs
   * the partitions to agree.
   */
  counts(userId: string, queries: readonly CountQuery[], cap: number, done: Done<Counts[]>): void {
    if (queries.length === 0) {
      done(undefined, []);
      return;
    }
    this.d.run(async () => {
      const byPartition = groupBy(
        queries.map((_, i) => i),
        (i) => this.d.keys.room((queries[i] as CountQuery).room),
      );
      const out: Counts[] = new Array(queries.length);
      await Promise.all(
        [...byPartition].map(async ([prefix, indexes]) => {
          const args: Array<string | number> = [prefix, userId, cap];
          for (const i of indexes) {
            const q = queries[i] as CountQuery;
            args.push(q.room, q.readSeq, q.upTo);
          }
          const raw = (await runScript(this.d.link, COUNTS, args)) as number[];
          indexes.forEach((i, k) => {
            out[i] = { unread: Number(raw[2 * k]), mentions: Number(raw[2 * k + 1]) };
          });
        }),
      );
      return out;
    }, done);
  }

  /** The pair's room is read first; `name` is asked only for a pair that has none yet. */
  directRoom(a: string, b: string, name: () => string, done: Done<string>): void {
    const [x, y] = a <= b ? [a, b] : [b, a];
    const pair = `${this.d.keys.users}dm:pair:${x.length}:${x}:${y}`;
    this.d.run(async () => {
      const found = (await this.d.link.send("GET", [pair])) as string | null;
      if (found !== null) return found;
      return String(await runScript(this.d.link, DIRECT_ROOM, [this.d.keys.users, pair, name(), x, y]));
    }, done);
  }

  directPair(room: string, done: Done<readonly [string, string] | undefined>): void {
    this.d.run(async () => {
      const [a, b] = (await this.d.link.send("HMGET", [
        `${this.d.keys.users}dm:room:${room}`,
        "a",
        "b",
      ])) as Array<string | null>;
      return typeof a === "string" && typeof b === "string" ? ([a, b] as const) : undefined;
    }, done);
  }

  /** Under the user's id, or `v1:` and the nick key for a v1 nick (user-scripts.ts BAN). */
  ban(room: string, ban: Ban, done: Done<void>): void {
    const key = ban.userId ?? `v1:${ban.nickKey}`;
    this.d.run(async () => {
      await this.inRoom(BAN, room, [key, ban.nickKey, JSON.stringify(ban)]);
    }, done);
  }

  unban(room: string, userId: string, done: Done<boolean>): void {
    this.d.run(async () => (await this.inRoom(UNBAN, room, [userId])) === 1, done);
  }

  /** Of the bans on the user or the nick (user-scripts.ts BANNED), the one in force at `now` that ends last. */
  banned(
    room: string,
    who: { userId?: string | undefined; nickKey?: string | undefined },
    now: number,
    done: Done<Ban | undefined>,
  ): void {
    this.d.run(async () => {
      const raw = (await this.inRoom(BANNED, room, [who.userId ?? "", who.nickKey ?? ""])) as string[];
      return holdingBan(
        raw.map((r) => JSON.parse(r) as Ban),
        now,
      );
    }, done);
  }

  /** Here at once; elsewhere through the events stream (a failure to write it is logged, not retried). */
  publish(userId: string, event: UserEvent): void {
    this.d.local(userId, event);
    this.d.run(
      async () => {
        await this.d.link.send("XADD", [
          this.eventsKey,
          "MAXLEN",
          "~",
          EVENTS_MAX_LEN,
          "*",
          "p",
          this.d.procId,
          "u",
          userId,
          "e",
          JSON.stringify(event),
        ]);
      },
      (err) => {
        if (err) this.d.log.log("warn", "redis_user_event_failed", { userId, ...describeError(err) });
      },
    );
  }

  /** Events from the stream: those of other processes go to the sink (this one's went at once). */
  private received(entries: StreamEntry[]): void {
    for (const [, flat] of entries) {
      const f = entryFields(flat);
      if (f.p === this.d.procId || f.u === undefined || f.e === undefined) continue;
      try {
        this.d.local(f.u, JSON.parse(f.e) as UserEvent);
      } catch (err) {
        this.d.log.log("error", "redis_user_event_bad", { userId: f.u, ...describeError(err) });
      }
    }
  }

  /** A script of what users share (user-scripts.ts): ARGV P, then `args`. */
  private script(script: string, args: ReadonlyArray<string | number>): Promise<unknown> {
    return runScript(this.d.link, script, [this.d.keys.users, ...args]);
  }

  /** A script of one user's keys, in its partition: ARGV P, userId, then `args`. */
  private ofUser(script: string, userId: string, args: ReadonlyArray<string | number>): Promise<unknown> {
    return runScript(this.d.link, script, [this.d.keys.user(userId), userId, ...args]);
  }

  /** A script of a room's keys (its bans): ARGV P, room, then `args`. */
  private inRoom(script: string, room: string, args: ReadonlyArray<string | number>): Promise<unknown> {
    return runScript(this.d.link, script, [this.d.keys.room(room), room, ...args]);
  }
}

/** `items` grouped by `key`, each group in the order of `items`. */
function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}
