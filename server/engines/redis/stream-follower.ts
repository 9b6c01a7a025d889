/**
 * Follows the streams of the rooms this process has replicas of, from the snapshot each was loaded
 * at, and turns their entries into the core's log entries. After a Redis blip the reader simply reads
 * on from the last id delivered, so nothing is skipped; a gap in the numbers is the core's to see.
 *
 * A chat entry names its post's seq and a change entry its rev: the text lives only in the room's
 * posts and changes (scripts.ts), so a delete leaves it nowhere. Each batch read is delivered once
 * the posts and changes it names are read too (one round trip, both at once, none for a batch of
 * presence and typing only).
 */
import type { v2 } from "../../../protocol";
import type { Kick, Post, RoomEntry } from "../../chat/engine";
import { describeError, type Logger } from "../../chat/log";
import { DELETED_TEXT_V1 } from "../../chat/posts";
import type { Inflight } from "./inflight";
import type { KeySpace } from "./key-space";
import { type RedisLink, sleep, streamIdAfter } from "./redis-link";
import { entryFields, type StreamEntry, StreamReader } from "./stream-reader";

/** One followed room: its stream, and the id of the last entry delivered (null while loading). */
export interface Follow {
  room: string;
  key: string;
  /** Its partition's prefix: the reader of that partition reads it. */
  prefix: string;
  lastId: string | null;
  /** Number of the last entry delivered: one not above it means the room's log started over. */
  lastN: number;
  /** The room's history generation as loaded (its snapshot's). */
  epoch: string;
}

export interface FollowerDeps {
  link: RedisLink;
  keys: KeySpace;
  /** A connection of its own for one partition's reader (XREAD BLOCK holds it). */
  readerLink: () => RedisLink;
  procId: string;
  inflight: Inflight;
  log: Logger;
  deliver: (room: string, entries: RoomEntry[]) => void;
  /**
   * The room's log can no longer be followed from here: its members come back. `backwards`: its
   * numbers went back under the same history (a failover lost the newest writes), so the history
   * under `epoch` must end before they come back.
   */
  resync: (room: string, why: string, backwards?: { epoch: string }) => void;
}

/** A stream read besides the rooms' (v2's user events): from `lastId` on, for as long as the process runs. */
interface Listener {
  prefix: string;
  lastId: string;
  apply: (entries: StreamEntry[]) => void;
}

export class StreamFollower {
  private readonly byKey = new Map<string, Follow>();
  private readonly listeners = new Map<string, Listener>();
  /** One reader per partition in use: a blocking read covers only keys of one slot on a cluster. */
  private readonly readers = new Map<string, StreamReader>();
  private started = false;

  constructor(private readonly d: FollowerDeps) {}

  /** A room is being loaded: it is followed from the id its snapshot gives (`loaded`). */
  start(room: string): Follow {
    const key = this.d.keys.roomKey(room, "log");
    const follow: Follow = { room, key, prefix: this.d.keys.room(room), lastId: null, lastN: 0, epoch: "" };
    this.byKey.set(follow.key, follow);
    return follow;
  }

  loaded(follow: Follow, lastId: string, lastN: number, epoch: string): void {
    if (this.byKey.get(follow.key) !== follow) return;
    follow.lastId = lastId;
    follow.lastN = lastN;
    follow.epoch = epoch;
    this.wake(follow.prefix);
  }

  stop(room: string): void {
    this.byKey.delete(this.d.keys.roomKey(room, "log"));
  }

  /**
   * Reads stream `key` (of partition `prefix`) too, from after `lastId`, handing its entries to
   * `apply` in order (call before `follow`).
   */
  listen(key: string, prefix: string, lastId: string, apply: (entries: StreamEntry[]) => void): void {
    this.listeners.set(key, { prefix, lastId, apply });
  }

  /** Starts reading: a reader for each partition with a stream to read, and more as rooms come. */
  follow(): void {
    this.started = true;
    for (const l of this.listeners.values()) this.readerFor(l.prefix);
    for (const f of this.followed()) this.readerFor(f.prefix);
  }

  async close(): Promise<void> {
    this.started = false;
    await Promise.all([...this.readers.values()].map((r) => r.stop()));
    this.readers.clear();
  }

  private readerFor(prefix: string): void {
    if (!this.started || this.readers.has(prefix)) return;
    const reader = new StreamReader(
      this.d.readerLink(),
      this.wakeKey(prefix),
      {
        streams: () => [
          ...this.listened().filter((l) => l.prefix === prefix),
          ...this.followed()
            .filter((f) => f.prefix === prefix)
            .map((f) => ({ key: f.key, lastId: f.lastId as string })),
        ],
        apply: (key, entries) => {
          const listener = this.listeners.get(key);
          if (!listener) return this.apply(key, entries);
          listener.lastId = entries.at(-1)?.[0] ?? listener.lastId;
          listener.apply(entries);
        },
      },
      this.d.log,
    );
    this.readers.set(prefix, reader);
    reader.start();
  }

  /** True while some followed room has entries not yet delivered here. */
  async behind(): Promise<boolean> {
    const read = [
      ...this.listened(),
      ...this.followed().map((f) => ({ key: f.key, lastId: f.lastId as string })),
    ];
    for (const { key, lastId } of read) {
      const last = (await this.d.link.send("XREVRANGE", [key, "+", "-", "COUNT", "1"])) as StreamEntry[];
      if (streamIdAfter(last[0]?.[0] ?? "0-0", lastId)) return true;
    }
    return false;
  }

  private listened(): Array<{ key: string; prefix: string; lastId: string }> {
    return [...this.listeners].map(([key, l]) => ({ key, prefix: l.prefix, lastId: l.lastId }));
  }

  private followed(): Follow[] {
    return [...this.byKey.values()].filter((f) => f.lastId !== null);
  }

  private async apply(key: string, raw: StreamEntry[]): Promise<void> {
    const follow = this.byKey.get(key);
    if (!follow || follow.lastId === null) return;
    const lastId = follow.lastId;
    const read = raw
      .filter(([id]) => streamIdAfter(id, lastId))
      .map(([id, flat]) => ({ id, f: entryFields(flat) }));
    if (read.length === 0) return;
    let content: Contents;
    try {
      content = await this.contents(follow.room, read);
    } catch (err) {
      // Nothing delivered, nothing marked read: the next read brings the same entries again.
      this.d.log.log("warn", "redis_contents_failed", { room: follow.room, ...describeError(err) });
      await sleep(100);
      return;
    }
    if (this.byKey.get(key) !== follow || follow.lastId !== lastId) return;
    const entries: RoomEntry[] = [];
    const stop = (why: string, backwards?: { epoch: string }) => {
      if (entries.length > 0) this.d.deliver(follow.room, entries);
      this.byKey.delete(follow.key);
      this.d.resync(follow.room, why, backwards);
    };
    for (const { id, f } of read) {
      const n = Number(f.n);
      // Newer in the stream but not in number: Redis lost the room (a restart without its data) and
      // it started over, or lost its newest writes (a failover to a replica that had not got them).
      // Its members here come back with `since` and meet a new epoch (made now, if Redis kept the old).
      if (n <= follow.lastN) return stop(`the room's log went back to entry ${n}`, { epoch: follow.epoch });
      const entry = toEntry(n, f, content);
      // Trimmed before this process read it, and gone from the trimmed too: it is far behind.
      if (!entry) return stop(`entry ${n} names ${f.k === "c" ? `post ${f.s}` : `rev ${f.r}`}, gone`);
      follow.lastId = id;
      follow.lastN = n;
      entries.push(entry);
    }
    if (entries.length > 0) this.d.deliver(follow.room, entries);
  }

  /** The posts and changes that entries name, read at once. */
  private async contents(
    room: string,
    read: ReadonlyArray<{ f: Record<string, string> }>,
  ): Promise<Contents> {
    const seqs = span(read, "c", "s");
    const revs = span(read, "x", "r");
    const range = (part: "msgs" | "trimmed" | "chg", [lo, hi]: [number, number]) =>
      lo > hi
        ? Promise.resolve([])
        : (this.d.link.send("ZRANGEBYSCORE", [
            this.d.keys.roomKey(room, part),
            String(lo),
            String(hi),
          ]) as Promise<string[]>);
    const [posts, changes] = await Promise.all([range("msgs", seqs), range("chg", revs)]);
    const out: Contents = { posts: new Map(), changes: new Map() };
    const add = (raw: string) => {
      const post = JSON.parse(raw) as Post;
      out.posts.set(post.seq, { raw, post });
    };
    posts.forEach(add);
    // Fewer than named: retention trimmed the oldest of them meanwhile (scripts.ts CHAT).
    if (posts.length < seqs[1] - seqs[0] + 1) (await range("trimmed", seqs)).forEach(add);
    for (const raw of changes) {
      const change = JSON.parse(raw) as v2.Change;
      out.changes.set(change.rev, change);
    }
    return out;
  }

  /** Interrupts the partition reader's blocking read (or starts it), so it picks up a room just loaded. */
  private wake(prefix: string): void {
    if (!this.readers.has(prefix)) {
      this.readerFor(prefix);
      return;
    }
    const wake = this.d.link.send("XADD", [this.wakeKey(prefix), "MAXLEN", "1", "*", "w", "1"]);
    this.d.inflight.track(wake.catch(() => {}));
  }

  private wakeKey(prefix: string): string {
    return `${prefix}proc:${this.d.procId}:wake`;
  }
}

/** What a batch of entries names: posts by seq (their stored JSON too), changes by rev. */
interface Contents {
  posts: Map<number, { raw: string; post: Post }>;
  changes: Map<number, v2.Change>;
}

/** The lowest and highest number in field `field` of the entries of kind `k` ([Infinity, -Infinity]: none). */
function span(
  read: ReadonlyArray<{ f: Record<string, string> }>,
  k: string,
  field: string,
): [number, number] {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const { f } of read) {
    if (f.k !== k) continue;
    const v = Number(f[field]);
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

/**
 * A post read after changes reached it: as first posted, but with its text as it stands now
 * ("(deleted)" once deleted, as v1 shows it); its changes follow in the log and fold it again.
 */
function unfolded(post: Post): Post {
  const { editedAt: _e, deleted, reactions: _r, ...msg } = post;
  if (deleted) msg.text = DELETED_TEXT_V1;
  return msg;
}

/** A stream entry's fields (see scripts.ts, change-scripts.ts) as a log entry; undefined when what it names is gone. */
function toEntry(n: number, f: Record<string, string>, content: Contents): RoomEntry | undefined {
  switch (f.k) {
    case "c": {
      const got = content.posts.get(Number(f.s));
      if (!got) return undefined;
      const { raw, post } = got;
      if (post.editedAt === undefined && post.deleted === undefined && post.reactions === undefined)
        return { n, kind: "chat", msg: post, wire: raw };
      const msg = unfolded(post);
      return { n, kind: "chat", msg, wire: JSON.stringify(msg) };
    }
    case "x": {
      const change = content.changes.get(Number(f.r));
      return change && { n, kind: "change", change };
    }
    case "kick": {
      const k = JSON.parse(f.d as string) as Kick;
      const entry: RoomEntry = { n, kind: "kick", nick: k.nick, by: k.by };
      if (k.reason !== undefined) entry.reason = k.reason;
      if (k.until !== undefined) entry.until = k.until;
      return entry;
    }
    case "p":
      return f.u === undefined
        ? { n, kind: "presence", event: JSON.parse(f.d as string) }
        : { n, kind: "presence", event: JSON.parse(f.d as string), userId: f.u };
    case "t":
      return { n, kind: "typing", from: f.c as string, wire: f.d as string };
    case "r":
      return { n, kind: "replaced", conn: f.f as string };
    default:
      return { n, kind: "void" };
  }
}
