/**
 * Delivery, written once for every engine: a room's log entries are applied to its replica in order
 * and published to the members here. Consecutive presence events share one message (in a big room
 * they wait up to `presenceBatchMs` for more, with the welcomes behind them); an ack follows its chat;
 * a gap in the log resyncs the room; readers too far behind are closed before anything is dropped.
 */
import { encode, LIMITS, nickKey, type PresenceEvent, v2 } from "../../protocol";
import type { Connection } from "./connection";
import type { Connections } from "./connections";
import type { RoomEntry } from "./engine";
import type { ChatLimits } from "./limits";
import type { Logger } from "./log";
import type { Metrics } from "./metrics";
import type { Fanout } from "./peer";

const { CLOSE_V2 } = v2;

import { safely } from "./peer";
import { v1Wire, v2Wire } from "./posts";
import type { Replica } from "./replica";
import type { Replicas } from "./replicas";

/**
 * How often a busy room's members are checked for backlog. Between checks Bun's own limit (set well
 * above ours) and the dropped-publish check in server.ts stand guard, so nothing is lost silently.
 */
const SLOW_CHECK_INTERVAL_MS = 50;

export interface DeliveryDeps {
  replicas: Replicas;
  connections: Connections;
  fanout: Fanout;
  metrics: Metrics;
  limits: ChatLimits;
  log: Logger;
  now: () => number;
  /** Runs `fn` in `ms` (a held presence batch). */
  timer: (fn: () => void, ms: number) => void;
}

export class Delivery {
  constructor(private readonly d: DeliveryDeps) {}

  /** New entries of `room`'s log, in order. */
  deliver(room: string, entries: readonly RoomEntry[]): void {
    const replica = this.d.replicas.get(room);
    if (!replica) return;
    for (const e of entries) {
      if (e.n <= replica.lastN) continue;
      if (e.n !== replica.lastN + 1) {
        this.resync(replica, `entry ${e.n} follows ${replica.lastN}`);
        return;
      }
      replica.lastN = e.n;
      switch (e.kind) {
        case "presence":
          if (replica.held.length === 0) replica.heldSince = e.at ?? this.d.now();
          replica.applyPresence(e.event, e.userId);
          replica.held.push(e.event);
          continue;
        case "chat":
          this.publishHeld(replica);
          if (e.msg.seq !== replica.lastSeq + 1) {
            this.resync(replica, `seq ${e.msg.seq} follows ${replica.lastSeq}`);
            return;
          }
          replica.applyChat(e.msg);
          this.publishPost(replica, e);
          this.payAcks(replica, e.msg.seq);
          break;
        case "typing":
          this.publishHeld(replica);
          this.typing(replica, e.from, e.wire);
          break;
        case "replaced": {
          const stale = replica.members.get(e.conn);
          if (stale) this.d.connections.replaced(stale);
          break;
        }
        case "void":
          break;
        case "change":
          this.publishHeld(replica);
          if (e.change.rev !== replica.lastRev + 1) {
            this.resync(replica, `rev ${e.change.rev} follows ${replica.lastRev}`);
            return;
          }
          replica.applyChange(e.change);
          this.publishV2(replica, JSON.stringify(e.change));
          break;
        case "kick":
          this.publishHeld(replica);
          this.kickV1(replica, e.nick);
          break;
      }
    }
    this.settle(replica, false);
    if (this.d.now() - replica.slowCheckAt >= SLOW_CHECK_INTERVAL_MS) this.closeSlowReaders(replica);
  }

  /** A chat is stored: its ack (if it had an id) follows it once this process has published that seq. */
  committed(conn: Connection, room: string, id: string | undefined, seq: number): void {
    const replica = conn.replica;
    const early = this.settled(conn, seq);
    if (id !== undefined) {
      if (replica && replica.name === room && replica.loaded && seq > replica.lastSeq) {
        const owed = replica.acks.get(seq);
        if (owed) owed.push({ conn, id });
        else replica.acks.set(seq, [{ conn, id }]);
      } else this.d.connections.ack(conn, id, seq);
    }
    if (early && replica?.loaded) this.runDue(replica);
  }

  /** A chat could not be stored. */
  failed(conn: Connection, id: string | undefined): void {
    const early = this.settled(conn, 0);
    this.d.connections.fail(conn, "internal", "the message could not be stored; send it again", id);
    if (early && conn.replica?.loaded) this.runDue(conn.replica);
  }

  /** True when the chat was one a connection sent before its welcome (which may now be due). */
  private settled(conn: Connection, seq: number): boolean {
    if (conn.state !== "pending" || conn.unsettledChats === 0) return false;
    conn.unsettledChats--;
    if (seq > conn.awaitSeq) conn.awaitSeq = seq;
    return true;
  }

  /** Publishes the held presence batches whose window has ended (all of them with `force`, at shutdown). */
  release(force: boolean): void {
    for (const replica of this.d.replicas.all()) {
      if (replica.loaded && replica.held.length > 0) this.settle(replica, force);
    }
  }

  /** This process can no longer follow the room: its clients reconnect (with `since`) and get it all. */
  resync(replica: Replica<Connection>, why: string): void {
    this.d.log.log("warn", "room_resync", { room: replica.name, why });
    replica.broken = true;
    replica.waiters = [];
    replica.acks.clear();
    replica.held = [];
    this.d.replicas.forget(replica);
    for (const conn of [...replica.members.values()]) this.d.connections.resync(conn, why);
  }

  /**
   * Publishes held presence unless the room may hold it longer, then runs the welcomes due. A big
   * room's presence-only batch waits for its window to end, so a join storm shares messages.
   */
  private settle(replica: Replica<Connection>, force: boolean): void {
    if (replica.held.length > 0 && !force) {
      const wait = this.holdFor(replica);
      if (wait > 0) {
        if (!replica.holdTimer) {
          replica.holdTimer = true;
          this.d.timer(() => {
            replica.holdTimer = false;
            if (!replica.broken) this.settle(replica, false);
          }, wait);
        }
        return;
      }
    }
    this.publishHeld(replica);
    this.runDue(replica);
  }

  private holdFor(replica: Replica<Connection>): number {
    const { presenceBatchMs, presenceBatchMinMembers } = this.d.limits;
    if (presenceBatchMs <= 0 || replica.members.size < presenceBatchMinMembers) return 0;
    return Math.max(0, replica.heldSince + presenceBatchMs - this.d.now());
  }

  private runDue(replica: Replica<Connection>): void {
    if (replica.held.length > 0 && this.holdFor(replica) > 0) return;
    this.publishHeld(replica);
    if (replica.waiters.length > 0) for (const run of replica.takeDue()) run();
  }

  private publishHeld(replica: Replica<Connection>): void {
    if (replica.held.length === 0) return;
    const held: PresenceEvent[] = replica.held;
    replica.held = [];
    // A message holds at most presenceEventsMax events, or the clients' decoder would refuse it.
    for (let i = 0; i < held.length; i += LIMITS.presenceEventsMax) {
      const events = held.slice(i, i + LIMITS.presenceEventsMax);
      this.publish(replica, encode({ type: "presence", room: replica.name, events }));
    }
  }

  /** To both versions' topics, as far as each has members here. */
  private publish(replica: Replica<Connection>, data: string): void {
    if (replica.members.size === 0) return;
    if (replica.members.size > replica.v2Members) this.d.fanout.publish(replica.topic, data);
    if (replica.v2Members > 0) this.d.fanout.publish(replica.topicV2, data);
    this.d.metrics.messagesOut += replica.members.size;
  }

  /** To v2 connections only (v1 never hears of changes). */
  private publishV2(replica: Replica<Connection>, data: string): void {
    if (replica.v2Members === 0) return;
    this.d.fanout.publish(replica.topicV2, data);
    this.d.metrics.messagesOut += replica.v2Members;
  }

  /** A v1 connection kicked by a moderator is closed with 4003 (its leave follows as any other). */
  private kickV1(replica: Replica<Connection>, nick: string): void {
    const key = nickKey(nick);
    for (const conn of [...replica.members.values()]) {
      if (conn.owner === undefined && conn.state !== "closed" && nickKey(conn.nick) === key) {
        this.d.connections.evict(conn, CLOSE_V2.kicked, "kicked by a moderator");
      }
    }
  }

  /** A post: each version's frame is made once, and only if someone here reads that version. */
  private publishPost(replica: Replica<Connection>, e: RoomEntry & { kind: "chat" }): void {
    if (replica.members.size === 0) return;
    if (replica.members.size > replica.v2Members) this.d.fanout.publish(replica.topic, v1Wire(e.msg, e.wire));
    if (replica.v2Members > 0) this.d.fanout.publish(replica.topicV2, v2Wire(e.msg));
    this.d.metrics.messagesOut += replica.members.size;
  }

  private payAcks(replica: Replica<Connection>, seq: number): void {
    if (replica.acks.size === 0) return;
    const owed = replica.acks.get(seq);
    if (!owed) return;
    replica.acks.delete(seq);
    for (const { conn, id } of owed) this.d.connections.ack(conn, id, seq);
  }

  /** To everyone in the room but the typer's own socket. */
  private typing(replica: Replica<Connection>, from: string, data: string): void {
    if (replica.members.size === 0) return;
    const typer = replica.members.get(from);
    const topics: Array<[string, boolean]> = [
      [replica.topic, replica.members.size > replica.v2Members],
      [replica.topicV2, replica.v2Members > 0],
    ];
    for (const [topic, wanted] of topics) {
      if (!wanted) continue;
      if (typer?.subscribed === topic) safely(() => typer.peer.publishOthers(topic, data), this.d.log);
      else this.d.fanout.publish(topic, data);
    }
    this.d.metrics.messagesOut += replica.members.size - (typer ? 1 : 0);
  }

  /**
   * Past Bun's backpressure limit frames would be dropped silently, leaving a gap: a reader this far
   * behind is closed with 1008 first, and can come back with `since`. The others are not slowed.
   */
  private closeSlowReaders(replica: Replica<Connection>): void {
    replica.slowCheckAt = this.d.now();
    for (const conn of replica.members.values()) {
      if (conn.state === "live" && conn.peer.bufferedAmount() > this.d.limits.slowConsumerBytes) {
        this.d.connections.dropSlowReader(conn);
      }
    }
  }
}
