/** A room's stored messages read from Redis (a sorted set by seq): `history`, REST and paging. */
import type { ChatMessage } from "../../../protocol";
import type { Page } from "../../chat/engine";
import type { RedisLink } from "./redis-link";

export function roomKey(prefix: string, room: string, part: "meta" | "log" | "users" | "msgs"): string {
  return `${prefix}room:${room}:${part}`;
}

export class RedisHistory {
  constructor(
    private readonly link: RedisLink,
    private readonly prefix: string,
  ) {}

  /** The newest `limit` messages with `seq < before`, ascending; `more` when older ones exist. */
  async before(room: string, before: number, limit: number): Promise<Page> {
    const raw = (await this.link.send("ZREVRANGEBYSCORE", [
      roomKey(this.prefix, room, "msgs"),
      `(${before}`,
      "-inf",
      "LIMIT",
      "0",
      String(limit + 1),
    ])) as string[];
    const messages = raw
      .slice(0, limit)
      .reverse()
      .map((m) => JSON.parse(m) as ChatMessage);
    return { messages, more: raw.length > limit };
  }
}
