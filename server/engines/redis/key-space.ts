/**
 * Where each key lives. On one Redis every key starts with the prefix, as it always has. On a Redis
 * Cluster (or with REDIS_PARTITIONS > 1 on one Redis) the rooms are spread over `partitions` hash tags:
 * a room's keys, the sessions and dedupe ids used in it, and the per-process bookkeeping of its
 * partition (heartbeats, the rooms a process holds users in, the room list) all start with
 * `PREFIX{N}:`, so every script that changes a room runs on one slot. A v2 user's record, rooms,
 * read markers and direct peers live in a partition too, chosen by its id (each user script touches
 * one user), so users spread over the primaries as rooms do; what is shared by all users (direct room
 * pairs, the identity key, the user events stream) lives under `PREFIX{u}:`, the guest counter under
 * `PREFIX{g}:`.
 *
 * Each partition is thus a complete copy of the single-Redis layout, for its rooms only: the scripts
 * are the same, only their prefix differs. A process beats and sweeps in every partition.
 *
 * Partition i's tag is chosen so that its slot lies in the i-th of `count` equal slot ranges: a
 * cluster made with `redis-cli --cluster create` gives each primary one contiguous range, so the
 * partitions spread over the primaries evenly rather than as CRC16 happens to throw them.
 */

/** Slots of a Redis Cluster. */
const SLOTS = 16384;
const encoder = new TextEncoder();

/** CRC16-CCITT (XMODEM), Redis Cluster's key hash: slot = crc16(tag) % 16384. */
export function crc16(text: string): number {
  let crc = 0;
  for (const byte of encoder.encode(text)) {
    crc ^= byte << 8;
    for (let b = 0; b < 8; b++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The hash tag of partition i of n: the first of `i`, `i.1`, `i.2`, ... whose slot is in range i. */
export function partitionTag(i: number, n: number): string {
  const lo = Math.floor((i * SLOTS) / n);
  const hi = Math.floor(((i + 1) * SLOTS) / n);
  for (let k = 0; ; k++) {
    const tag = k === 0 ? String(i) : `${i}.${k}`;
    const slot = crc16(tag) % SLOTS;
    if (slot >= lo && slot < hi) return tag;
  }
}

/** FNV-1a over UTF-16 code units: fast, stable across processes and versions, spread well enough. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class KeySpace {
  /** Every partition's prefix, in order. */
  readonly partitions: readonly string[];
  /** The prefix of what v2's users share: direct room pairs, the identity key, the user events. */
  readonly users: string;
  /** The prefix of the guest counter (one for the whole chat, so guest-N names one guest). */
  readonly guests: string;

  /**
   * `count` partitions; `tagged` puts each under its own hash tag (always on a cluster). Untagged,
   * there is one partition and it is the bare prefix: the single-Redis layout, unchanged.
   */
  constructor(
    readonly base: string,
    count: number,
    readonly tagged: boolean,
  ) {
    const n = tagged ? Math.max(1, Math.floor(count)) : 1;
    this.partitions = Array.from({ length: n }, (_, i) =>
      tagged ? `${base}{${partitionTag(i, n)}}:` : base,
    );
    this.users = tagged ? `${base}{u}:` : base;
    this.guests = tagged ? `${base}{g}:` : base;
  }

  /** The prefix of the partition that holds `room`. */
  room(room: string): string {
    return this.partitionOf(room);
  }

  /** The prefix of the partition that holds v2 user `userId`'s own keys. */
  user(userId: string): string {
    return this.partitionOf(userId);
  }

  private partitionOf(name: string): string {
    const all = this.partitions;
    return all.length === 1 ? (all[0] as string) : (all[hash(name) % all.length] as string);
  }

  /** A key of `room`: `part` is e.g. "meta", "log", "msgs". */
  roomKey(room: string, part: string): string {
    return `${this.room(room)}room:${room}:${part}`;
  }

  /**
   * The two keys every script declares (redis-link.ts `scriptCall`): they route it to the slot of
   * partition `prefix`, and no one ever writes them. While that slot migrates between primaries
   * both nodes see the script's declared keys missing, and a request naming several keys of which
   * some are missing is refused with TRYAGAIN on either side, so no script runs until the slot has
   * moved (ioredis retries it). Declaring the keys a script touches would not do that: a script
   * that empties a key and touches it again, or makes a new one, stops halfway on a migrating slot
   * with what it wrote so far kept (test/redis/cluster-harness.test.ts shows both).
   */
  static fence(prefix: string): [string, string] {
    return [`${prefix}fence:a`, `${prefix}fence:b`];
  }
}
