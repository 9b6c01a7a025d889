/**
 * This process's claims as it knows them: every connection holding a nickname in a room here (and
 * those whose claim is in flight), and the leaves still to land in Redis. From them it keeps the
 * users hashes honest when Redis was away or slow:
 * - a leave is retried, with backoff, until it lands (one chain of leaves per connection, in order);
 * - a claim whose answer never came is given back with a leave sent right behind it;
 * - `reconcile` puts every room this process has users in (its `proc:ID:rooms` set, and its own
 *   claims) in agreement with its open connections: entries for connections it no longer has are
 *   removed, and its connections that Redis lost (swept while this process was presumed dead) claim
 *   their nicknames again. The engine runs it after Redis answers again, after this process was
 *   swept, and periodically.
 * A v2 connection holds a share of its user's claim in the room (scripts.ts CLAIM_USER): its leave
 * takes only that share back, and reconcile puts it back in the claim, or the claim itself.
 */
import { nickKey } from "../../../protocol";
import type { EngineConn } from "../../chat/engine";
import { describeError, type Logger } from "../../chat/log";
import { sidOf } from "../../chat/tokens";
import type { Inflight } from "./inflight";
import type { KeySpace } from "./key-space";
import { type RedisLink, sleep } from "./redis-link";
import type { HeldEntry, RoomScripts } from "./room-scripts";

interface Held<C> {
  conn: C;
  room: string;
  nick: string;
  session: string;
  /** v2: the user whose claim it shares. */
  userId: string | undefined;
}

export interface ClaimsDeps<C extends EngineConn> {
  link: RedisLink;
  scripts: RoomScripts;
  keys: KeySpace;
  procId: string;
  inflight: Inflight;
  log: Logger;
  /** A connection of this process lost its claim (its nickname taken meanwhile): it alone comes back. */
  evict: (conn: C, why: string) => void;
  /** Redis does not list this process (swept): it must register again before it claims anything. */
  unregistered: () => void;
}

/** Backoff of a leave that failed: 250 ms doubling up to 5 s, for as long as it takes. */
const LEAVE_RETRY_MS = 250;
const LEAVE_RETRY_MAX_MS = 5000;
/** Rooms reconciled at once (one script each, sent together). */
const RECONCILE_BATCH = 64;

export class Claims<C extends EngineConn> {
  private readonly held = new Map<string, Held<C>>();
  /** Connections whose claim is in flight: conn id -> room. */
  private readonly entering = new Map<string, string>();
  /** Room -> ids of the connections held or entering there. */
  private readonly byRoom = new Map<string, Set<string>>();
  /** Per connection: its leaves, one after the other. */
  private readonly leaves = new Map<string, Promise<void>>();
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private wakeSleepers: () => void = () => {};
  private readonly stopSignal = new Promise<void>((resolve) => {
    this.wakeSleepers = resolve;
  });

  constructor(private readonly d: ClaimsDeps<C>) {}

  /** Leaves retrying, for tests and metrics. */
  get pendingLeaves(): number {
    return this.leaves.size;
  }

  /** A claim for `conn` in `room` is about to be sent. */
  claiming(conn: C, room: string): void {
    this.entering.set(conn.id, room);
    this.index(conn.id, room);
  }

  /** The claim succeeded: `conn` holds `nick` in `room` with `session` (v2: a share of `userId`'s claim). */
  entered(conn: C, room: string, nick: string, session: string, userId?: string): void {
    this.entering.delete(conn.id);
    this.held.set(conn.id, { conn, room, nick, session, userId });
    this.index(conn.id, room);
  }

  /**
   * The claim failed. `inDoubt`: a claim script was sent and not answered (it may still run, or
   * have run): a leave that ends the session goes right behind it, so no one is left claimed.
   * `userId`: it was a v2 claim (its leave takes the connection's share back).
   */
  enterFailed(conn: C, room: string, token: string, inDoubt: boolean, userId?: string): void {
    if (this.entering.get(conn.id) === room) this.entering.delete(conn.id);
    this.unindex(conn.id, room);
    if (!inDoubt) return;
    if (userId !== undefined) this.queueUserLeave(conn.id, room);
    else this.queueLeave(conn.id, room, "", token, true);
  }

  /** A rename took effect in Redis. */
  renamed(connId: string, nick: string): void {
    const h = this.held.get(connId);
    if (h) h.nick = nick;
  }

  /** v2: user `userId` is `nick` in `room` now (its claim was renamed, by any of its connections). */
  userRenamed(room: string, userId: string, nick: string): void {
    for (const id of this.byRoom.get(room) ?? []) {
      const h = this.held.get(id);
      if (h && h.room === room && h.userId === userId) h.nick = nick;
    }
  }

  /** v2: the user whose claim the connection shares in `room`, if it holds a share there. */
  userOf(connId: string, room: string): string | undefined {
    const h = this.held.get(connId);
    return h && h.room === room ? h.userId : undefined;
  }

  /** The nickname the engine knows `conn` holds in `room`, if it holds one there. */
  nickOf(connId: string, room: string): string | undefined {
    const h = this.held.get(connId);
    return h && h.room === room ? h.nick : undefined;
  }

  /** A resumed connection took over `connId`'s entry: the core closes it without a leave. */
  replaced(room: string, connId: string): void {
    if (this.held.get(connId)?.room !== room) return;
    this.held.delete(connId);
    this.unindex(connId, room);
  }

  /** Gives up the connection's claim in `room`; retried until it lands. */
  leave(conn: C, room: string, ending: boolean): void {
    const h = this.held.get(conn.id);
    const mine = h !== undefined && h.room === room;
    if (mine) {
      this.held.delete(conn.id);
      this.unindex(conn.id, room);
    }
    if ((mine ? h.userId : conn.userId) !== undefined) {
      this.queueUserLeave(conn.id, room);
      return;
    }
    const nick = mine ? h.nick : conn.nick;
    this.queueLeave(conn.id, room, nickKey(nick), mine ? h.session : sidOf(conn.session), ending);
  }

  /** Brings every room of this process in agreement with its connections (runs once at a time). */
  reconcile(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.reconcileOnce();
        } while (this.again && !this.stopped);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  /** No more retries: the process is going (its retire removes what is left). */
  stop(): void {
    this.stopped = true;
    this.wakeSleepers();
  }

  private async reconcileOnce(): Promise<void> {
    const rooms = new Set<string>();
    const held = await Promise.all(
      this.d.keys.partitions.map(
        (prefix) =>
          this.d.link.send("SMEMBERS", [`${prefix}proc:${this.d.procId}:rooms`]) as Promise<string[]>,
      ),
    );
    for (const room of held.flat()) rooms.add(room);
    for (const room of this.byRoom.keys()) rooms.add(room);
    const all = [...rooms];
    let removed = 0;
    const evicted: C[] = [];
    for (let i = 0; i < all.length && !this.stopped; i += RECONCILE_BATCH) {
      // Each room's connections are taken and sent in one go: whatever this process sends later
      // (a claim, a rename, a leave) runs after it in Redis.
      const batch = all.slice(i, i + RECONCILE_BATCH).map((room) => {
        const entries = this.entriesIn(room);
        const reply = this.d.scripts.reconcile(room, entries);
        reply.catch(() => {}); // awaited below, unless an earlier one ends the round
        return { room, entries, reply };
      });
      for (const { room, entries, reply } of batch) {
        const r = await reply;
        if (r.kind === "unregistered") {
          this.d.unregistered();
          return;
        }
        removed += r.removed;
        const sent = new Map(entries.map((e) => [e.conn, e.nick]));
        for (const note of r.notes) {
          const h = this.held.get(note.conn);
          // Changed since (a rename answered, a leave): the next reconcile looks again.
          if (!h || h.room !== room || h.nick !== sent.get(note.conn)) continue;
          if (note.what === "a" && note.nick !== undefined) {
            // A rename that ran after its answer was given up: Redis and everyone's list have this name.
            this.d.log.log("info", "redis_rename_adopted", { conn: note.conn, room });
            h.nick = note.nick;
            h.conn.nick = note.nick;
          } else if (note.what === "j") {
            this.d.log.log("info", "redis_user_reclaimed", { conn: note.conn, room });
          } else if (note.what === "r") {
            this.replaced(room, note.conn);
          } else if (note.what === "t") {
            evicted.push(h.conn);
          }
        }
      }
    }
    if (removed > 0) this.d.log.log("info", "redis_stale_users_removed", { removed });
    for (const conn of evicted) this.d.evict(conn, "its nickname was taken while this server was cut off");
  }

  /** The connections of this process in `room`, as RECONCILE takes them. */
  private entriesIn(room: string): HeldEntry[] {
    const out: HeldEntry[] = [];
    for (const id of this.byRoom.get(room) ?? []) {
      const h = this.held.get(id);
      if (h && h.room === room)
        out.push({
          conn: id,
          session: h.session,
          key: nickKey(h.nick),
          nick: h.nick,
          userId: h.userId ?? "",
        });
      else if (this.entering.get(id) === room)
        out.push({ conn: id, session: "", key: "", nick: "", userId: "" });
    }
    return out;
  }

  private queueLeave(connId: string, room: string, key: string, token: string, ending: boolean): void {
    this.chain(connId, room, () => this.d.scripts.leave(room, key, connId, token, ending));
  }

  private queueUserLeave(connId: string, room: string): void {
    this.chain(connId, room, () => this.d.scripts.leaveUser(room, connId));
  }

  /** Chains a leave behind the connection's earlier ones; the first is sent now, in this turn. */
  private chain(connId: string, room: string, send: () => Promise<void>): void {
    const prev = this.leaves.get(connId);
    const next = prev ? prev.then(() => this.land(room, send)) : this.land(room, send);
    this.leaves.set(connId, next);
    this.d.inflight.track(
      next.finally(() => {
        if (this.leaves.get(connId) === next) this.leaves.delete(connId);
      }),
    );
  }

  /** Sends the leave until Redis runs it (it is idempotent: it only removes the connection's own entry). */
  private async land(room: string, send: () => Promise<void>): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await send();
        if (attempt > 0) this.d.log.log("info", "redis_leave_landed", { room, attempts: attempt + 1 });
        return;
      } catch (err) {
        if (attempt === 0) this.d.log.log("warn", "redis_leave_failed", { room, ...describeError(err) });
        const wait = Math.min(LEAVE_RETRY_MAX_MS, LEAVE_RETRY_MS * 2 ** Math.min(attempt, 10));
        await Promise.race([sleep(wait), this.stopSignal]);
      }
    }
  }

  private index(connId: string, room: string): void {
    const set = this.byRoom.get(room) ?? new Set();
    set.add(connId);
    this.byRoom.set(room, set);
  }

  private unindex(connId: string, room: string): void {
    if (this.held.get(connId)?.room === room || this.entering.get(connId) === room) return;
    const set = this.byRoom.get(room);
    set?.delete(connId);
    if (set?.size === 0) this.byRoom.delete(room);
  }
}
