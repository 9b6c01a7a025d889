/**
 * This process's connections to the Redis hub: what is sent to them, the rate limits they answer to,
 * and taking one out of its room, here at once and in Redis as soon as it answers.
 */
import { CLOSE, type ErrorCode, encode, type ServerMessage } from "../../protocol";
import type { HubLimits } from "../hub";
import { describeError, type Logger } from "../log";
import type { Metrics } from "../metrics";
import type { Gate } from "../rate-limit";
import type { Inflight } from "./inflight";
import { type RedisConnection, safely } from "./redis-connection";
import type { RoomScripts } from "./room-scripts";
import type { RoomViews } from "./room-views";

export interface ConnectionsDeps {
  metrics: Metrics;
  limits: HubLimits;
  log: Logger;
  now: () => number;
  views: RoomViews;
  scripts: RoomScripts;
  inflight: Inflight;
  /** Sends the chats waiting for this turn: a leave must not overtake them. */
  flush: () => void;
}

export class Connections {
  private readonly open = new Set<RedisConnection>();

  constructor(private readonly d: ConnectionsDeps) {}

  get size(): number {
    return this.open.size;
  }

  add(conn: RedisConnection): void {
    this.open.add(conn);
  }

  /** A copy: closing them while iterating is safe. */
  all(): RedisConnection[] {
    return [...this.open];
  }

  send(conn: RedisConnection, msg: ServerMessage): void {
    if (conn.state === "closed") return;
    let sent: number | undefined;
    safely(() => {
      sent = conn.peer.send(encode(msg));
    }, this.d.log);
    this.d.metrics.messagesOut++;
    // 0: the socket dropped the frame (past its backpressure limit); never leave a silent gap.
    if (sent === 0) this.dropSlowReader(conn);
  }

  fail(conn: RedisConnection, code: ErrorCode, message: string, id?: string): void {
    this.d.metrics.error(code);
    this.send(
      conn,
      id === undefined ? { type: "error", code, message } : { type: "error", code, message, id },
    );
  }

  /** An ack; one owed to a connection still waiting for its welcome follows the welcome. */
  ack(conn: RedisConnection, id: string, seq: number): void {
    this.d.metrics.acks++;
    if (conn.state === "pending") conn.lateAcks.push({ id, seq });
    else this.send(conn, { type: "ack", id, seq });
  }

  /** Takes a token at `gate`, or answers `rate_limited`; a connection that keeps going is closed. */
  admit(conn: RedisConnection, gate: Gate, id?: string): boolean {
    const verdict = conn.limits.take(gate, this.d.now());
    if (verdict === "ok") return true;
    this.fail(conn, "rate_limited", "too many messages; slow down", id);
    if (verdict === "flooding") {
      this.d.log.log("warn", "flood_closed", { conn: conn.id, room: conn.view?.name });
      this.closePeer(conn, CLOSE.policy, "flooding");
    }
    return false;
  }

  closePeer(conn: RedisConnection, code: number, reason: string): void {
    safely(() => conn.peer.close(code, reason), this.d.log);
  }

  /** Takes a connection out of its room for good (`ending`: its session's expiry starts) and closes its socket. */
  evict(conn: RedisConnection, code: number, reason: string, ending = true): void {
    this.detach(conn, ending);
    this.closePeer(conn, code, reason);
  }

  /** This process lost track of the connection's room: it reconnects with `since` and misses nothing. */
  resync(conn: RedisConnection, why: string): void {
    this.evict(conn, CLOSE.internal, `out of step with the broker (${why}); reconnect with since`);
  }

  /** A resumed connection took this one's place (on any process): closed with 4001, no leave. */
  replaced(stale: RedisConnection): void {
    stale.claimed = false;
    this.evict(stale, CLOSE.replaced, "replaced by a resumed session", false);
  }

  dropSlowReader(conn: RedisConnection): void {
    this.d.log.log("warn", "slow_consumer_closed", { conn: conn.id, room: conn.view?.name });
    this.evict(conn, CLOSE.policy, "too slow to keep up");
  }

  /** Takes a connection out of its room for good. */
  detach(conn: RedisConnection, ending: boolean): void {
    this.leaveView(conn, ending);
    conn.state = "closed";
    conn.busy = false;
    conn.deferred = [];
    this.open.delete(conn);
  }

  /** Leaves the current room here at once, and in Redis as soon as it answers. */
  leaveView(conn: RedisConnection, ending: boolean): void {
    const view = conn.view;
    if (!view) return;
    view.members.delete(conn.id);
    if (conn.subscribed) safely(() => conn.peer.unsubscribe(view.topic), this.d.log);
    conn.subscribed = null;
    conn.view = null;
    if (conn.claimed) {
      this.d.flush();
      this.leaveLater(view.name, conn.key, conn.id, ending);
    }
    conn.claimed = false;
    this.d.views.release(view);
  }

  /** Removes a users entry, retrying while Redis is away (a dead process's entries are swept instead). */
  leaveLater(room: string, key: string, connId: string, ending: boolean): void {
    const work = async () => {
      for (let attempt = 0; attempt < 240; attempt++) {
        try {
          await this.d.scripts.leave(room, key, connId, ending);
          return;
        } catch (err) {
          if (attempt === 0) this.d.log.log("warn", "redis_leave_failed", { room, ...describeError(err) });
          await Bun.sleep(250);
        }
      }
    };
    this.d.inflight.track(work());
  }
}
