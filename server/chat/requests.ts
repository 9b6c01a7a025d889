/**
 * The requests a member makes of its room: rename, join, who, typing and history. The rules live
 * here; the engine only claims, logs and reads.
 */
import { encode, LIMITS, nickKey } from "../../protocol";
import type { ClientBudgets } from "./client-budgets";
import type { Connection } from "./connection";
import type { Connections } from "./connections";
import type { Engine, EngineConn } from "./engine";
import type { ChatLimits } from "./limits";
import { describeError, type Logger } from "./log";
import { toV1 } from "./posts";
import type { Replica } from "./replica";
import type { Replicas } from "./replicas";
import type { RoomEntry } from "./room-entry";

export interface RequestsDeps {
  engine: Engine<EngineConn>;
  budgets: ClientBudgets;
  replicas: Replicas;
  connections: Connections;
  entry: RoomEntry;
  log: Logger;
  now: () => number;
  /** The engine answered a request the connection waited for: its later frames may run now. */
  unblock: (conn: Connection) => void;
  limits: ChatLimits;
  /** Wall-clock time (bans end by it). */
  wallNow: () => number;
}

export class Requests {
  constructor(private readonly d: RequestsDeps) {}

  /** Frames sent after a rename wait for it, so they apply under the name it leaves them with. */
  rename(conn: Connection, replica: Replica<Connection>, nick: string): void {
    const { connections } = this.d;
    if (conn.fixedNick !== undefined) {
      connections.fail(conn, "forbidden", "your nickname is fixed by your access token");
      return;
    }
    if (nick === conn.nick) return;
    conn.busy = true;
    this.renameTo(conn, replica, nick);
  }

  private renameTo(conn: Connection, replica: Replica<Connection>, nick: string): void {
    const { connections, engine, log } = this.d;
    engine.rename(conn, replica.name, nick, (err, outcome) => {
      if (conn.state === "closed") return;
      if (err !== undefined && err !== null) {
        log.log("error", "rename_failed", { conn: conn.id, ...describeError(err) });
        connections.fail(conn, "internal", "the nickname could not be changed; try again");
      } else if (outcome === "ok") conn.nick = nick;
      else if (outcome === "taken")
        connections.fail(conn, "nick_taken", `${nick} is already taken in ${replica.name}`);
      else if (outcome === "banned")
        connections.fail(conn, "forbidden", `${nick} is banned from ${replica.name}`);
      else connections.resync(conn, "its nickname is no longer held");
      this.d.unblock(conn);
    });
  }

  /**
   * The same room again is a fresh welcome. Another room is loaded first: if it cannot be, the
   * connection stays where it was with `internal`; else it leaves here and enters there.
   */
  join(conn: Connection, current: Replica<Connection>, target: string, since: number | undefined): void {
    if (target === current.name) {
      current.at(current.lastN, () => this.d.entry.welcome(conn, current, since));
      return;
    }
    const { replicas, connections, log } = this.d;
    conn.busy = true;
    const next = replicas.acquire(target);
    next.whenLoaded((err) => {
      if (conn.state === "closed" || conn.replica !== current) {
        replicas.release(next);
        return;
      }
      if (err !== undefined) {
        replicas.release(next);
        log.log("error", "join_failed", { conn: conn.id, room: target, ...describeError(err) });
        connections.fail(conn, "internal", `could not open ${target}; try again`);
        this.d.unblock(conn);
        return;
      }
      // A ban holds a v1 connection out by its nickname.
      this.d.engine.users.banned(target, { nickKey: nickKey(conn.nick) }, this.d.wallNow(), (bErr, ban) => {
        if (conn.state === "closed" || conn.replica !== current) return replicas.release(next);
        if ((bErr !== undefined && bErr !== null) || ban) {
          replicas.release(next);
          if (ban) connections.fail(conn, "forbidden", `you are banned from ${target}`);
          else connections.fail(conn, "internal", `could not open ${target}; try again`);
          this.d.unblock(conn);
          return;
        }
        connections.leaveRoom(conn, false);
        conn.state = "pending";
        this.d.entry.enter(conn, target, { since, wanted: conn.fixedNick ?? conn.nick });
        replicas.release(next);
      });
    });
  }

  who(conn: Connection, replica: Replica<Connection>): void {
    this.d.connections.send(conn, { type: "users", room: replica.name, users: replica.sortedUsers() });
  }

  /** At most one a `typingIntervalMs` per connection; never stored. */
  typing(conn: Connection, replica: Replica<Connection>): void {
    const now = this.d.now();
    if (conn.state !== "live" || now - conn.lastTypingAt < LIMITS.typingIntervalMs) return;
    conn.lastTypingAt = now;
    this.d.engine.typing(conn, replica.name, encode({ type: "typing", room: replica.name, nick: conn.nick }));
  }

  /**
   * The newest `limit` messages before `before` (or the newest of all). History is budgeted per
   * client address in bytes, and refused to a connection that is not reading what it was sent.
   */
  history(conn: Connection, room: string, before: number | undefined, limit: number): void {
    const { budgets, connections, limits, now } = this.d;
    if (conn.peer.bufferedAmount() > limits.slowConsumerBytes / 4) {
      connections.fail(conn, "rate_limited", "read what was sent to you before asking for more history");
      return;
    }
    if (!budgets.mayReadHistory(conn, now())) {
      connections.fail(conn, "rate_limited", "too much history from your address; try again in a moment");
      return;
    }
    this.d.engine.history(room, before ?? Number.MAX_SAFE_INTEGER, limit, (err, page) => {
      if (conn.state === "closed") return;
      if (err !== undefined && err !== null) {
        this.d.log.log("error", "history_failed", { room, ...describeError(err) });
        connections.fail(conn, "internal", "could not read the room's history; try again");
        return;
      }
      if (!page) return;
      const data = encode({ type: "history", room, messages: page.messages.map(toV1), hasMore: page.more });
      budgets.chargeHistory(conn, data.length, now());
      connections.sendRaw(conn, data);
    });
  }
}
