/**
 * The requests a member makes of its room that go to Redis and back: a rename (claimed by a script,
 * announced through the stream), typing (which rides the stream too, in order with the chats) and a
 * history page. Chats go through ChatBatch, joins through RoomEntry.
 */
import { encode, LIMITS, nickKey, type PresenceEvent } from "../../protocol";
import { describeError, type Logger } from "../log";
import type { Connections } from "./connections";
import type { Inflight } from "./inflight";
import type { RedisConnection } from "./redis-connection";
import type { RedisHistory } from "./redis-history";
import type { RoomScripts } from "./room-scripts";
import type { View } from "./room-views";

export interface RoomRequestsDeps {
  scripts: RoomScripts;
  history: RedisHistory;
  connections: Connections;
  inflight: Inflight;
  log: Logger;
  now: () => number;
  /** Sends the chats waiting for this turn, so the request does not overtake them. */
  flush: () => void;
  /** Redis answered a request the connection waited for: its later frames may run now. */
  answered: (conn: RedisConnection) => void;
}

export class RoomRequests {
  constructor(private readonly d: RoomRequestsDeps) {}

  /** Frames sent after a rename wait for it, so they apply under the name it leaves them with. */
  rename(conn: RedisConnection, view: View, nick: string): void {
    const { connections, log } = this.d;
    if (conn.fixedNick !== undefined) {
      connections.fail(conn, "forbidden", "your nickname is fixed by your access token");
      return;
    }
    if (nick === conn.nick) return;
    this.d.flush();
    conn.busy = true;
    const event: PresenceEvent = { event: "nick", from: conn.nick, nick };
    const work = async () => {
      try {
        const data = JSON.stringify(event);
        const outcome = await this.d.scripts.rename(view.name, conn.id, conn.key, nickKey(nick), nick, data);
        if (outcome === "ok") {
          conn.nick = nick;
          conn.key = nickKey(nick);
        } else if (outcome === "taken")
          connections.fail(conn, "nick_taken", `${nick} is already taken in ${view.name}`);
        else connections.resync(conn, "its nickname is no longer held in Redis");
      } catch (err) {
        log.log("error", "redis_rename_failed", { conn: conn.id, ...describeError(err) });
        connections.fail(conn, "internal", "the nickname could not be changed; try again");
      }
      this.d.answered(conn);
    };
    this.d.inflight.track(work());
  }

  /** At most one a `typingIntervalMs` per connection; never stored. */
  typing(conn: RedisConnection, view: View): void {
    const now = this.d.now();
    if (conn.state !== "live" || now - conn.lastTypingAt < LIMITS.typingIntervalMs) return;
    conn.lastTypingAt = now;
    this.d.flush();
    const data = encode({ type: "typing", room: view.name, nick: conn.nick });
    this.d.inflight.track(
      this.d.scripts
        .typing(view.name, conn.id, data)
        .catch((err) => this.d.log.log("warn", "redis_typing_failed", describeError(err))),
    );
  }

  /** The newest `limit` messages before `before` (or the newest of all). */
  history(conn: RedisConnection, room: string, before: number | undefined, limit: number): void {
    this.d.inflight.track(this.historyPage(conn, room, before ?? Number.MAX_SAFE_INTEGER, limit));
  }

  private async historyPage(
    conn: RedisConnection,
    room: string,
    before: number,
    limit: number,
  ): Promise<void> {
    try {
      const page = await this.d.history.before(room, before, limit);
      this.d.connections.send(conn, { type: "history", room, messages: page.messages, hasMore: page.more });
    } catch (err) {
      this.d.log.log("error", "redis_history_failed", { room, ...describeError(err) });
      this.d.connections.fail(conn, "internal", "could not read the room's history; try again");
    }
  }
}
