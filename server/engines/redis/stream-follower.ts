/**
 * Follows the streams of the rooms this process has replicas of, from the snapshot each was loaded
 * at, and turns their entries into the core's log entries. After a Redis blip the reader simply reads
 * on from the last id delivered, so nothing is skipped; a gap in the numbers is the core's to see.
 */
import type { RoomEntry } from "../../chat/engine";
import type { Logger } from "../../chat/log";
import type { Inflight } from "./inflight";
import { roomKey } from "./redis-history";
import { type RedisLink, streamIdAfter } from "./redis-link";
import { entryFields, type StreamEntry, StreamReader } from "./stream-reader";

/** One followed room: its stream, and the id of the last entry delivered (null while loading). */
export interface Follow {
  room: string;
  key: string;
  lastId: string | null;
  /** Number of the last entry delivered: one not above it means the room's log started over. */
  lastN: number;
}

export interface FollowerDeps {
  link: RedisLink;
  prefix: string;
  procId: string;
  inflight: Inflight;
  log: Logger;
  deliver: (room: string, entries: RoomEntry[]) => void;
  /** The room's log can no longer be followed from here: its members come back. */
  resync: (room: string, why: string) => void;
}

/** A stream read besides the rooms' (v2's user events): from `lastId` on, for as long as the process runs. */
interface Listener {
  lastId: string;
  apply: (entries: StreamEntry[]) => void;
}

export class StreamFollower {
  private readonly byKey = new Map<string, Follow>();
  private readonly listeners = new Map<string, Listener>();
  private reader: StreamReader | undefined;

  constructor(private readonly d: FollowerDeps) {}

  /** A room is being loaded: it is followed from the id its snapshot gives (`loaded`). */
  start(room: string): Follow {
    const follow: Follow = { room, key: roomKey(this.d.prefix, room, "log"), lastId: null, lastN: 0 };
    this.byKey.set(follow.key, follow);
    return follow;
  }

  loaded(follow: Follow, lastId: string, lastN: number): void {
    if (this.byKey.get(follow.key) !== follow) return;
    follow.lastId = lastId;
    follow.lastN = lastN;
    this.wake();
  }

  stop(room: string): void {
    this.byKey.delete(roomKey(this.d.prefix, room, "log"));
  }

  /** Reads stream `key` too, from after `lastId`, handing its entries to `apply` in order (call before `follow`). */
  listen(key: string, lastId: string, apply: (entries: StreamEntry[]) => void): void {
    this.listeners.set(key, { lastId, apply });
  }

  /** Starts reading, on `readerLink` (a connection of its own, which XREAD BLOCK holds). */
  follow(readerLink: RedisLink): void {
    this.reader = new StreamReader(
      readerLink,
      this.wakeKey(),
      {
        streams: () => [
          ...this.listened(),
          ...this.followed().map((f) => ({ key: f.key, lastId: f.lastId as string })),
        ],
        apply: (key, entries) => {
          const listener = this.listeners.get(key);
          if (listener) {
            listener.lastId = entries.at(-1)?.[0] ?? listener.lastId;
            listener.apply(entries);
          } else this.apply(key, entries);
        },
      },
      this.d.log,
    );
    this.reader.start();
  }

  async close(): Promise<void> {
    await this.reader?.stop();
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

  private listened(): Array<{ key: string; lastId: string }> {
    return [...this.listeners].map(([key, l]) => ({ key, lastId: l.lastId }));
  }

  private followed(): Follow[] {
    return [...this.byKey.values()].filter((f) => f.lastId !== null);
  }

  private apply(key: string, raw: StreamEntry[]): void {
    const follow = this.byKey.get(key);
    if (!follow || follow.lastId === null) return;
    const entries: RoomEntry[] = [];
    for (const [id, flat] of raw) {
      if (!streamIdAfter(id, follow.lastId)) continue;
      const entry = toEntry(entryFields(flat));
      if (entry.n <= follow.lastN) {
        // Newer in the stream but not in number: Redis lost the room (a restart without its data)
        // and it started over. Its members here come back with `since` and meet a new epoch.
        if (entries.length > 0) this.d.deliver(follow.room, entries);
        this.byKey.delete(follow.key);
        this.d.resync(follow.room, `the room's log started over at entry ${entry.n}`);
        return;
      }
      follow.lastId = id;
      follow.lastN = entry.n;
      entries.push(entry);
    }
    if (entries.length > 0) this.d.deliver(follow.room, entries);
  }

  /** Interrupts the reader's blocking read, so it picks up a room just loaded. */
  private wake(): void {
    const wake = this.d.link.send("XADD", [this.wakeKey(), "MAXLEN", "1", "*", "w", "1"]);
    this.d.inflight.track(wake.catch(() => {}));
  }

  private wakeKey(): string {
    return `${this.d.prefix}proc:${this.d.procId}:wake`;
  }
}

/** A stream entry's fields (see scripts.ts) as a log entry. */
function toEntry(f: Record<string, string>): RoomEntry {
  const n = Number(f.n);
  switch (f.k) {
    case "c":
      return { n, kind: "chat", msg: JSON.parse(f.d as string), wire: f.d as string };
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
