/**
 * This process's connections: what is sent to them, the rate limits they answer to, and taking one
 * out of its room (here at once, in the engine as it can). Every send goes through `send`, so a
 * dropped frame always closes its reader instead of leaving a silent gap.
 */
import { CLOSE, type ErrorCode, encode, type ServerMessage } from "../../protocol";
import type { ClientBudgets } from "./client-budgets";
import type { Connection } from "./connection";
import type { Engine, EngineConn } from "./engine";
import type { ChatLimits } from "./limits";
import type { Logger } from "./log";
import type { Metrics } from "./metrics";
import { safely } from "./peer";
import type { Gate } from "./rate-limit";
import type { Replicas } from "./replicas";
import type { UsersHere } from "./v2/user-conn";

/** A send this large also checks the sender's client share of unsent bytes (small ones need not). */
const LARGE_SEND_BYTES = 4096;

export interface ConnectionsDeps {
  engine: Engine<EngineConn>;
  budgets: ClientBudgets;
  replicas: Replicas;
  metrics: Metrics;
  limits: ChatLimits;
  log: Logger;
  now: () => number;
  usersHere: UsersHere;
}

export class Connections {
  private readonly open = new Set<Connection>();

  constructor(private readonly d: ConnectionsDeps) {}

  get size(): number {
    return this.open.size;
  }

  add(conn: Connection): void {
    this.open.add(conn);
    this.d.budgets.add(conn, this.d.now());
  }

  /** A copy: closing them while iterating is safe. */
  all(): Connection[] {
    return [...this.open];
  }

  send(conn: Connection, msg: ServerMessage): void {
    if (conn.state === "closed") return;
    this.sendRaw(conn, encode(msg));
  }

  sendRaw(conn: Connection, data: string): void {
    let sent: number | undefined;
    safely(() => {
      sent = conn.peer.send(data);
    }, this.d.log);
    this.d.metrics.messagesOut++;
    // 0: the socket dropped the frame (past its backpressure limit); never leave a silent gap.
    if (sent === 0) {
      this.dropSlowReader(conn);
      return;
    }
    // Whatever filled a buffer counts (a welcome, history, an ack), not only broadcasts.
    if (conn.peer.bufferedAmount() > this.d.limits.slowConsumerBytes) {
      this.dropSlowReader(conn);
      return;
    }
    if (data.length >= LARGE_SEND_BYTES) {
      const worst = this.d.budgets.overShare(conn);
      if (worst) this.dropSlowReader(worst);
    }
  }

  /** Closes the most backlogged connection of every client over its share of unsent bytes. */
  enforceShares(): void {
    for (const worst of [...this.d.budgets.overShares()]) this.dropSlowReader(worst);
  }

  fail(conn: Connection, code: ErrorCode, message: string, id?: string): void {
    this.d.metrics.error(code);
    this.send(
      conn,
      id === undefined ? { type: "error", code, message } : { type: "error", code, message, id },
    );
  }

  /** An ack (a first one or a retry's); one owed to a connection still waiting for its welcome follows it. */
  ack(conn: Connection, id: string, seq: number): void {
    if (conn.state === "closed") return;
    this.d.metrics.acks++;
    if (conn.state !== "pending") {
      this.send(conn, { type: "ack", id, seq });
      return;
    }
    if (conn.lateAcks === undefined) conn.lateAcks = [];
    conn.lateAcks.push({ id, seq });
  }

  /** Takes a token at `gate`, or answers `rate_limited`; a connection that keeps going is closed. */
  admit(conn: Connection, gate: Gate, id?: string): boolean {
    const verdict = conn.limits.take(gate, this.d.now());
    if (verdict === "ok") return true;
    this.fail(conn, "rate_limited", "too many messages; slow down", id);
    if (verdict === "flooding") {
      this.d.log.log("warn", "flood_closed", { conn: conn.id, room: conn.replica?.name });
      this.closePeer(conn, CLOSE.policy, "flooding");
    }
    return false;
  }

  closePeer(conn: Connection, code: number, reason: string): void {
    safely(() => conn.peer.close(code, reason), this.d.log);
  }

  /** Takes a connection out of its room for good (`ending`: its session's expiry starts) and closes it. */
  evict(target: Connection, code: number, reason: string, ending = true): void {
    // A v2 membership cannot go alone: its whole connection does (and comes back with sync).
    const conn = target.owner ?? target;
    this.detach(conn, ending);
    this.closePeer(conn, code, reason);
  }

  /** This process lost track of the connection's room: it reconnects with `since` and misses nothing. */
  resync(conn: Connection, why: string): void {
    this.evict(conn, CLOSE.internal, `out of step with the room (${why}); reconnect with since`);
  }

  /** A resumed connection took this one's place (on any process): closed with 4001, no leave. */
  replaced(stale: Connection): void {
    stale.claimed = false;
    this.evict(stale, CLOSE.replaced, "replaced by a resumed session", false);
  }

  dropSlowReader(target: Connection): void {
    const conn = target.owner ?? target;
    if (conn.state === "closed") return;
    this.d.log.log("warn", "slow_consumer_closed", { conn: conn.id, room: conn.replica?.name });
    this.evict(conn, CLOSE.policy, "too slow to keep up");
  }

  /** Takes a connection out of its room (a v2 one out of all of its rooms) and this process for good. */
  detach(conn: Connection, ending: boolean): void {
    this.leaveRoom(conn, ending);
    const user = conn.v2;
    if (user !== undefined && conn.owner === undefined) {
      for (const member of user.rooms.values()) {
        this.leaveRoom(member, ending);
        member.state = "closed";
      }
      user.rooms.clear();
      this.d.usersHere.remove(user.userId, conn);
    }
    conn.state = "closed";
    conn.busy = false;
    conn.deferred = undefined;
    this.open.delete(conn);
    this.d.budgets.remove(conn);
  }

  /** Leaves the current room here at once, and in the engine (which logs the leave). */
  leaveRoom(conn: Connection, ending: boolean): void {
    const replica = conn.replica;
    if (!replica) return;
    if (replica.members.delete(conn.id) && conn.owner !== undefined) replica.v2Members--;
    if (conn.subscribed) safely(() => conn.peer.unsubscribe(conn.subscribed as string), this.d.log);
    conn.subscribed = null;
    conn.replica = null;
    if (conn.claimed) this.d.engine.leave(conn, replica.name, ending);
    conn.claimed = false;
    this.d.replicas.release(replica);
  }
}
