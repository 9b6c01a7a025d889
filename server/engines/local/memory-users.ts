/**
 * v2's users in memory (UserTables), with the same answers as SQLite's: for the memory store, model
 * tests and fault injection. Counts are read from the memory store's messages (sorted by seq) and
 * from each room's sorted mention seqs, by binary search.
 */
import type { Done, StoredReaction } from "../../chat/engine";
import { randomToken } from "../../chat/tokens";
import {
  type Ban,
  type CountQuery,
  type Counts,
  holdingBan,
  type JoinOutcome,
  type Membership,
  type UserRecord,
} from "../../chat/users";
import { answer, type StoredMessage, type UserTables } from "./store";

/** A message as the memory store keeps it: as it was stored, with the state its changes left it in. */
export interface MemoryPost extends StoredMessage {
  editedAt?: string | undefined;
  deleted?: true | undefined;
  reactions?: StoredReaction[] | undefined;
}

interface User {
  nick: string;
  revoked: boolean;
}

/** The index of the first element of ascending `list` whose seq is above `seq`. */
export function above<T>(list: readonly T[], seq: number, seqOf: (item: T) => number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (seqOf(list[mid] as T) <= seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const seqOfMessage = (m: MemoryPost) => m.seq;
const itself = (seq: number) => seq;

function membership(m: Membership): Membership {
  return m.peer === undefined
    ? { room: m.room, readSeq: m.readSeq }
    : { room: m.room, readSeq: m.readSeq, peer: m.peer };
}

export class MemoryUsers implements UserTables {
  private key: string | undefined;
  private readonly users = new Map<string, User>();
  /** User id -> room -> marker and peer (a Map keeps join order); apart from users, as in SQLite. */
  private readonly rooms = new Map<string, Map<string, Membership>>();
  /** Direct rooms: room -> [a, b] with a <= b, and JSON [a, b] -> room. */
  private readonly pairs = new Map<string, readonly [string, string]>();
  private readonly directs = new Map<string, string>();
  /** Room -> user id -> ascending seqs of the posts that mention that user. */
  private readonly mentions = new Map<string, Map<string, number[]>>();
  /** Room -> ban key (a user id, or v1:NICKKEY) -> ban. Expired ones stay, as in SQLite. */
  private readonly bans = new Map<string, Map<string, Ban>>();

  /** `messagesOf`: a room's stored messages, ascending by seq. */
  constructor(private readonly messagesOf: (room: string) => readonly MemoryPost[] | undefined) {}

  /** The store committed `m` (after every earlier seq of its room). The author's own name is no mention. */
  posted(m: StoredMessage): void {
    if (!m.mentionIds) return;
    let byUser = this.mentions.get(m.room);
    if (!byUser) {
      byUser = new Map();
      this.mentions.set(m.room, byUser);
    }
    for (const id of m.mentionIds) {
      if (id === m.userId) continue;
      const seqs = byUser.get(id);
      if (!seqs) byUser.set(id, [m.seq]);
      else if (seqs.at(-1) !== m.seq) seqs.push(m.seq);
    }
  }

  /** The store deleted a room's messages below `firstKept`: their mentions go too. */
  pruned(room: string, firstKept: number): void {
    const byUser = this.mentions.get(room);
    if (!byUser) return;
    for (const [id, seqs] of byUser) {
      seqs.splice(0, above(seqs, firstKept - 1, itself));
      if (seqs.length === 0) byUser.delete(id);
    }
    if (byUser.size === 0) this.mentions.delete(room);
  }

  /** The store deleted a post (`seq`): it mentions no one any more. */
  unmention(room: string, seq: number): void {
    const byUser = this.mentions.get(room);
    if (!byUser) return;
    for (const [id, seqs] of byUser) {
      const i = above(seqs, seq - 1, itself);
      if (seqs[i] === seq) seqs.splice(i, 1);
      if (seqs.length === 0) byUser.delete(id);
    }
    if (byUser.size === 0) this.mentions.delete(room);
  }

  identityKey(done: Done<string>): void {
    this.key ??= randomToken(32);
    done(undefined, this.key);
  }

  create(userId: string, nick: string, done: Done<void>): void {
    if (!this.users.has(userId)) this.users.set(userId, { nick, revoked: false });
    done(undefined);
  }

  load(userId: string, done: Done<UserRecord | undefined>): void {
    answer(done, () => {
      const user = this.users.get(userId);
      if (!user || user.revoked) return undefined;
      return {
        userId,
        nick: user.nick,
        rooms: [...(this.rooms.get(userId)?.values() ?? [])].map(membership),
      };
    });
  }

  nicks(userIds: readonly string[], done: Done<Map<string, string>>): void {
    const out = new Map<string, string>();
    for (const id of userIds) {
      const user = this.users.get(id);
      if (user) out.set(id, user.nick);
    }
    done(undefined, out);
  }

  revoke(userId: string, done: Done<boolean>): void {
    answer(done, () => {
      const user = this.users.get(userId);
      if (!user || user.revoked) return false;
      user.revoked = true;
      this.rooms.delete(userId);
      return true;
    });
  }

  rename(userId: string, nick: string, done: Done<void>): void {
    const user = this.users.get(userId);
    if (user) user.nick = nick;
    done(undefined);
  }

  join(userId: string, m: Membership, max: number, done: Done<JoinOutcome>): void {
    answer(done, (): JoinOutcome => {
      let rooms = this.rooms.get(userId);
      if (!rooms) {
        rooms = new Map();
        this.rooms.set(userId, rooms);
      }
      if (rooms.has(m.room)) return "member";
      if (rooms.size >= max) return "full";
      rooms.set(m.room, membership(m));
      return "joined";
    });
  }

  part(userId: string, room: string, done: Done<boolean>): void {
    done(undefined, this.rooms.get(userId)?.delete(room) ?? false);
  }

  read(userId: string, room: string, seq: number, done: Done<number | undefined>): void {
    const m = this.rooms.get(userId)?.get(room);
    if (m) m.readSeq = Math.max(m.readSeq, seq);
    done(undefined, m?.readSeq);
  }

  counts(userId: string, queries: readonly CountQuery[], cap: number, done: Done<Counts[]>): void {
    done(
      undefined,
      queries.map(({ room, readSeq, upTo }) => {
        if (cap <= 0 || upTo <= readSeq) return { unread: 0, mentions: 0 };
        let unread = 0;
        const list = this.messagesOf(room) ?? [];
        for (let i = above(list, readSeq, seqOfMessage); i < list.length && unread < cap; i++) {
          const m = list[i] as MemoryPost;
          if (m.seq > upTo) break;
          if (m.userId !== userId && !m.deleted) unread++;
        }
        const seqs = this.mentions.get(room)?.get(userId) ?? [];
        const mentions = above(seqs, upTo, itself) - above(seqs, readSeq, itself);
        return { unread, mentions: Math.min(cap, mentions) };
      }),
    );
  }

  directRoom(a: string, b: string, name: () => string, done: Done<string>): void {
    answer(done, () => {
      const pair: [string, string] = a <= b ? [a, b] : [b, a];
      const key = JSON.stringify(pair);
      const found = this.directs.get(key);
      if (found !== undefined) return found;
      const room = name();
      if (this.pairs.has(room)) throw new Error(`direct room ${room} exists already`);
      this.directs.set(key, room);
      this.pairs.set(room, pair);
      return room;
    });
  }

  directPair(room: string, done: Done<readonly [string, string] | undefined>): void {
    done(undefined, this.pairs.get(room));
  }

  ban(room: string, ban: Ban, done: Done<void>): void {
    let byKey = this.bans.get(room);
    if (!byKey) {
      byKey = new Map();
      this.bans.set(room, byKey);
    }
    byKey.set(ban.userId ?? `v1:${ban.nickKey}`, copyBan(ban));
    done(undefined);
  }

  unban(room: string, userId: string, done: Done<boolean>): void {
    done(undefined, this.bans.get(room)?.delete(userId) ?? false);
  }

  /** Of the bans in force on the user id or the nick key, the one that ends last (for ever first). */
  banned(
    room: string,
    who: { userId?: string | undefined; nickKey?: string | undefined },
    now: number,
    done: Done<Ban | undefined>,
  ): void {
    const matching = [...(this.bans.get(room) ?? [])]
      .filter(
        ([key, ban]) =>
          (who.userId !== undefined && key === who.userId) ||
          (who.nickKey !== undefined && ban.nickKey === who.nickKey),
      )
      .map(([, ban]) => ban);
    const found = holdingBan(matching, now);
    done(undefined, found && copyBan(found));
  }
}

/** A ban with only the fields it has (as SQLite answers it). */
function copyBan(ban: Ban): Ban {
  const out: Ban =
    ban.userId === undefined
      ? { nickKey: ban.nickKey, until: ban.until, by: ban.by }
      : { userId: ban.userId, nickKey: ban.nickKey, until: ban.until, by: ban.by };
  if (ban.reason !== undefined) out.reason = ban.reason;
  return out;
}
