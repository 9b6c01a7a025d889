/**
 * A room's stored posts and changes read from Redis (sorted sets by seq and by rev): `history`,
 * `post`, `changes`, REST and paging. Posts are stored folded (change-scripts.ts rewrites them).
 */
import type { v2 } from "../../../protocol";
import type { ChangePage, Page, Post } from "../../chat/engine";
import type { KeySpace } from "./key-space";
import type { RedisLink } from "./redis-link";

export class RedisHistory {
  constructor(
    private readonly link: RedisLink,
    private readonly keys: KeySpace,
  ) {}

  /** The newest `limit` messages with `seq < before`, ascending; `more` when older ones exist. */
  async before(room: string, before: number, limit: number): Promise<Page> {
    const raw = (await this.link.send("ZREVRANGEBYSCORE", [
      this.keys.roomKey(room, "msgs"),
      `(${before}`,
      "-inf",
      "LIMIT",
      "0",
      String(limit + 1),
    ])) as string[];
    const messages = raw
      .slice(0, limit)
      .reverse()
      .map((m) => JSON.parse(m) as Post);
    return { messages, more: raw.length > limit };
  }

  /** The post `seq` as it stands now, or undefined. */
  async post(room: string, seq: number): Promise<Post | undefined> {
    const s = String(seq);
    const raw = (await this.link.send("ZRANGEBYSCORE", [this.keys.roomKey(room, "msgs"), s, s])) as string[];
    return raw[0] === undefined ? undefined : (JSON.parse(raw[0]) as Post);
  }

  /** The changes with `sinceRev < rev <= upTo`, ascending, at most `limit`; `more` when some were cut. */
  async changes(room: string, sinceRev: number, upTo: number, limit: number): Promise<ChangePage> {
    if (upTo <= sinceRev) return { changes: [], more: false };
    const max = Math.max(0, limit);
    const raw = (await this.link.send("ZRANGEBYSCORE", [
      this.keys.roomKey(room, "chg"),
      `(${sinceRev}`,
      String(upTo),
      "LIMIT",
      "0",
      String(max + 1),
    ])) as string[];
    return { changes: raw.slice(0, max).map((c) => JSON.parse(c) as v2.Change), more: raw.length > max };
  }
}
