/**
 * Entering a room: the replica is loaded, the engine claims a nickname (resuming the session when it
 * can) and logs the join, and the welcome goes once the replica has applied that join, so it agrees
 * with everything published after it. Leaving is Connections.leaveRoom.
 */
import { CLOSE, encode, LIMITS, nickKey, PROTOCOL_VERSION, v2 } from "../../protocol";
import type { ClientBudgets } from "./client-budgets";
import type { Connection } from "./connection";
import type { Connections } from "./connections";
import type { Engine, EngineConn, EnterRequest, Page } from "./engine";
import { describeError, type Logger } from "./log";
import { safely } from "./peer";
import { toV1 } from "./posts";
import type { Replica } from "./replica";
import type { Replicas } from "./replicas";

export interface EnterOptions {
  since: number | undefined;
  resume?: string | undefined;
  /** Wanted nickname; undefined asks for a guest name. */
  wanted: string | undefined;
}

export interface RoomEntryDeps {
  engine: Engine<EngineConn>;
  budgets: ClientBudgets;
  now: () => number;
  replicas: Replicas;
  connections: Connections;
  log: Logger;
  /** The connection has its welcome: the frames it sent meanwhile may run now. */
  unblock: (conn: Connection) => void;
  /** Wall-clock time (bans end by it). */
  wallNow: () => number;
}

export class RoomEntry {
  constructor(private readonly d: RoomEntryDeps) {}

  /** Puts `conn` (busy until this answers) into `room`; its welcome follows its join. */
  enter(conn: Connection, room: string, opts: EnterOptions): void {
    const { replicas, connections, engine, log } = this.d;
    conn.busy = true;
    const replica = replicas.acquire(room);
    const giveUp = (err: unknown) => {
      replicas.release(replica);
      if (conn.state === "closed") return;
      log.log("error", "enter_failed", { conn: conn.id, room, ...describeError(err) });
      connections.evict(conn, CLOSE.internal, "the chat store is unavailable; try again");
    };
    replica.whenLoaded((loadErr) => {
      if (loadErr !== undefined) return giveUp(loadErr);
      const req: EnterRequest = {
        room,
        resume: opts.resume,
        wanted: opts.wanted,
        fixedNick: conn.fixedNick,
        client: conn.client,
      };
      engine.enter(conn, req, (err, claim) => {
        if (err !== undefined && err !== null) return giveUp(err);
        if (!claim) return giveUp(new Error("the engine answered no claim"));
        conn.session = claim.session;
        conn.nick = claim.nick;
        if (conn.state === "closed" || replica.broken) {
          // Gone while we waited: give the claim back (a leave, since others may have seen the join).
          engine.leave(conn, room, true);
          replicas.release(replica);
          if (conn.state !== "closed") connections.resync(conn, "the room went out of step");
          return;
        }
        const seat = () => {
          conn.claimed = true;
          conn.replica = replica;
          replica.members.set(conn.id, conn);
          replica.at(claim.at, () => this.welcome(conn, replica, opts.since));
          this.d.unblock(conn);
        };
        // The upgrade checked the nick asked for; a resumed or varied one is checked here.
        if (opts.resume === undefined && claim.nick === opts.wanted) return seat();
        engine.users.banned(room, { nickKey: nickKey(claim.nick) }, this.d.wallNow(), (bErr, ban) => {
          if ((bErr === undefined || bErr === null) && !ban) return seat();
          engine.leave(conn, room, true);
          replicas.release(replica);
          if (ban) connections.evict(conn, v2.CLOSE_V2.kicked, "banned from this room");
          else giveUp(bErr);
        });
      });
    });
  }

  /** The history a welcome carries, as of the replica's position: from storage, or from the replica. */
  private page(replica: Replica<Connection>, since: number | undefined): Page {
    const pages = this.d.engine.pages;
    if (pages) return pages.page(replica.name, since, replica.lastSeq);
    return since === undefined
      ? replica.latest(LIMITS.welcomeHistory)
      : replica.after(since, LIMITS.sinceMax);
  }

  /** Subscribes the connection to its room and sends the welcome, then the acks that waited for it. */
  welcome(conn: Connection, replica: Replica<Connection>, since: number | undefined): void {
    if (conn.state === "closed" || conn.replica !== replica) return;
    if (conn.unsettledChats > 0 || conn.awaitSeq > replica.lastSeq) {
      // Its own chats are still on their way: the welcome will carry them.
      replica.waiters.push({ at: replica.lastN, run: () => this.welcome(conn, replica, since) });
      return;
    }
    let page: Page;
    try {
      page = this.page(replica, since);
    } catch (err) {
      this.d.log.log("error", "welcome_failed", { conn: conn.id, ...describeError(err) });
      this.d.connections.evict(conn, CLOSE.internal, "could not read the room's history");
      return;
    }
    if (conn.subscribed !== replica.topic) {
      safely(() => conn.peer.subscribe(replica.topic), this.d.log);
      conn.subscribed = replica.topic;
    }
    conn.state = "live";
    const data = encode({
      type: "welcome",
      protocol: PROTOCOL_VERSION,
      connectionId: conn.id,
      room: replica.name,
      nick: conn.nick,
      users: replica.sortedUsers(),
      history: page.messages.map(toV1),
      historyTruncated: page.more,
      lastSeq: replica.lastSeq,
      resumeToken: conn.session,
      ...(replica.epoch === undefined ? {} : { epoch: replica.epoch }),
    });
    // A welcome with `since` may carry 500 messages: it counts against the client's history budget.
    if (since !== undefined) this.d.budgets.chargeHistory(conn, data.length, this.d.now());
    this.d.connections.sendRaw(conn, data);
    const late = conn.lateAcks ?? [];
    conn.lateAcks = undefined;
    for (const { id, seq } of late) this.d.connections.send(conn, { type: "ack", id, seq });
    this.d.unblock(conn);
  }
}
