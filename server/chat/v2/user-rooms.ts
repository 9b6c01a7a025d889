/**
 * A v2 user's rooms: `join`, `part` and `dm` change its stored membership and then tell every
 * connection of the user (on every process) through a user event, which each process applies to its
 * own connections here: entering the room and announcing it with `joined`, or leaving with `parted`.
 */
import { CLOSE, nickKey, type v2 } from "../../../protocol";
import type { Connection } from "../connection";
import type { Connections } from "../connections";
import type { ChatLimits } from "../limits";
import { describeError, type Logger } from "../log";
import type { Replica } from "../replica";
import type { Replicas } from "../replicas";
import { randomToken } from "../tokens";
import type { Membership, UserEvent, UserStore } from "../users";
import type { Memberships } from "./memberships";
import type { UserConn, UsersHere } from "./user-conn";
import type { UserEntry } from "./user-entry";
import type { UserRequests } from "./user-requests";

type Req = v2.ClientMessageV2;

export interface UserRoomsDeps {
  users: UserStore;
  replicas: Replicas;
  connections: Connections;
  memberships: Memberships;
  usersHere: UsersHere;
  entry: UserEntry;
  requests: UserRequests;
  limits: ChatLimits;
  log: Logger;
  wallNow: () => number;
  unblock: (conn: Connection) => void;
}

/** The part of a direct room's name after `~`: 128 random bits. */
function directRoomName(): string {
  return `~${randomToken(16)}`;
}

export class UserRooms {
  constructor(private readonly d: UserRoomsDeps) {}

  /** `join`: a room of the user already is announced again to this connection; a new one to all. */
  join(conn: Connection, room: string, id?: string): void {
    const user = conn.v2 as UserConn;
    const member = user.rooms.get(room);
    if (member?.state === "live") {
      this.d.entry.sendJoined(conn, member);
      return;
    }
    if (user.entering.has(room)) return;
    this.withRoom(conn, room, id, (replica) => {
      if (room.startsWith("~")) {
        this.d.users.directPair(room, (err, pair) => {
          if (this.failed(conn, err, id)) return this.d.replicas.release(replica);
          if (!pair?.includes(user.userId)) {
            this.d.replicas.release(replica);
            this.d.requests.fail(conn, "not_found", `there is no room ${room} for you`, id);
            this.d.unblock(conn);
            return;
          }
          const peer = pair[0] === user.userId ? pair[1] : pair[0];
          this.add(conn, replica, peer, id);
        });
        return;
      }
      this.add(conn, replica, undefined, id);
    });
  }

  /** Stores the user's membership (its nick checked free there) and announces it to all its connections. */
  private add(conn: Connection, replica: Replica<Connection>, peer: string | undefined, id?: string): void {
    const user = conn.v2 as UserConn;
    const userId = user.userId;
    const nick = user.nick;
    if (replica.takenFrom(userId, nickKey(nick))) {
      this.d.replicas.release(replica);
      this.d.requests.fail(
        conn,
        "nick_taken",
        `${nick} is taken in ${replica.name}; change your nickname first`,
        id,
      );
      this.d.unblock(conn);
      return;
    }
    this.d.users.banned(replica.name, { userId, nickKey: nickKey(nick) }, this.d.wallNow(), (bErr, ban) => {
      if (this.failed(conn, bErr, id)) return this.d.replicas.release(replica);
      if (ban) {
        this.d.replicas.release(replica);
        const until = ban.until === null ? "" : ` until ${new Date(ban.until).toISOString()}`;
        this.d.requests.fail(conn, "forbidden", `you are banned from ${replica.name}${until}`, id);
        this.d.unblock(conn);
        return;
      }
      this.store(conn, replica, peer, id);
    });
  }

  /** Stores the membership (the checks passed) and announces it. */
  private store(conn: Connection, replica: Replica<Connection>, peer: string | undefined, id?: string): void {
    const user = conn.v2 as UserConn;
    const userId = user.userId;
    const mark: Membership = { room: replica.name, readSeq: replica.lastSeq, peer };
    this.d.users.join(userId, mark, this.d.limits.maxRoomsPerUser, (err, outcome) => {
      if (this.failed(conn, err, id) || outcome === "full") this.d.replicas.release(replica);
      if (err !== undefined && err !== null) return;
      if (outcome === "full") {
        const max = this.d.limits.maxRoomsPerUser;
        this.d.requests.fail(
          conn,
          "forbidden",
          `you are in ${max} rooms, the most allowed; part one first`,
          id,
        );
        this.d.unblock(conn);
        return;
      }
      // This connection is announced first (its later frames wait for `joined`); the others hear the event.
      const existing = user.rooms.get(replica.name);
      const stored = outcome === "joined" ? mark : (user.marks.get(replica.name) ?? mark);
      if (existing?.state === "live") this.d.entry.sendJoined(conn, existing, () => this.d.unblock(conn));
      else this.d.entry.announce(conn, stored, () => this.d.unblock(conn));
      this.d.replicas.release(replica);
      if (outcome === "joined") this.d.users.publish(userId, { type: "joined", ...mark });
    });
  }

  part(conn: Connection, msg: Req & { type: "part" }): void {
    const user = conn.v2 as UserConn;
    if (!user.marks.has(msg.room)) {
      this.d.requests.fail(conn, "not_found", `you are not in ${msg.room}`, msg.id);
      return;
    }
    conn.busy = true;
    this.d.users.part(user.userId, msg.room, (err) => {
      if (this.failed(conn, err, msg.id)) return;
      this.applyTo(conn, user, { type: "parted", room: msg.room });
      this.d.users.publish(user.userId, { type: "parted", room: msg.room });
      this.d.unblock(conn);
    });
  }

  /** Opens (or finds) the direct room with the user holding `nick` in one of this user's rooms. */
  dm(conn: Connection, msg: Req & { type: "dm" }, nick: string): void {
    const user = conn.v2 as UserConn;
    const key = nickKey(nick);
    let other: string | undefined;
    for (const m of user.rooms.values()) {
      const owner = m.replica?.owners.get(key);
      if (owner !== undefined && owner !== user.userId) {
        other = owner;
        break;
      }
    }
    if (other === undefined) {
      this.d.requests.fail(conn, "not_found", `no user called ${nick} is online in your rooms`, msg.id);
      return;
    }
    const peer = other;
    conn.busy = true;
    this.d.users.directRoom(user.userId, peer, directRoomName, (err, room) => {
      if (this.failed(conn, err, msg.id) || room === undefined) return;
      this.withRoom(conn, room, msg.id, (replica) => {
        // The other user first: it is added (and told) whatever this connection does next.
        const mark: Membership = { room, readSeq: replica.lastSeq, peer: user.userId };
        this.d.users.join(peer, mark, this.d.limits.maxRoomsPerUser, (jErr, outcome) => {
          if (this.failed(conn, jErr, msg.id)) return this.d.replicas.release(replica);
          if (outcome === "full") {
            this.d.replicas.release(replica);
            this.d.requests.fail(conn, "forbidden", `${nick} is in as many rooms as allowed`, msg.id);
            this.d.unblock(conn);
            return;
          }
          if (outcome === "joined") this.d.users.publish(peer, { type: "joined", ...mark });
          this.add(conn, replica, peer, msg.id);
        });
      });
    });
  }

  /** Something the user did, heard by this process: applied to each of the user's connections here. */
  apply(userId: string, event: UserEvent): void {
    for (const conn of this.d.usersHere.of(userId)) {
      const user = conn.v2;
      if (!user || conn.state === "closed") continue;
      try {
        this.applyTo(conn, user, event);
      } catch (err) {
        this.d.log.log("error", "user_event_failed", { conn: conn.id, ...describeError(err) });
      }
    }
  }

  private applyTo(conn: Connection, user: UserConn, event: UserEvent): void {
    switch (event.type) {
      case "joined":
        this.d.entry.announce(conn, { room: event.room, readSeq: event.readSeq, peer: event.peer });
        break;
      case "parted":
        user.marks.delete(event.room);
        if (this.d.memberships.leave(conn, event.room) && user.welcomed) {
          this.d.connections.sendRaw(conn, JSON.stringify({ type: "parted", room: event.room }));
        }
        break;
      case "read": {
        const mark = user.marks.get(event.room);
        if (mark && event.seq > mark.readSeq) mark.readSeq = event.seq;
        if (user.welcomed && user.rooms.has(event.room)) {
          this.d.connections.sendRaw(
            conn,
            JSON.stringify({ type: "read", room: event.room, seq: event.seq }),
          );
        }
        break;
      }
      case "nick":
        user.nick = event.nick;
        for (const m of user.rooms.values()) m.nick = event.nick;
        break;
      case "revoked":
        this.d.connections.evict(conn, CLOSE.policy, "this identity was revoked");
        break;
      case "kicked": {
        user.marks.delete(event.room);
        if (this.d.memberships.leave(conn, event.room) && user.welcomed) {
          const kicked: v2.Kicked = { type: "kicked", room: event.room, by: event.by };
          if (event.reason !== undefined) kicked.reason = event.reason;
          if (event.until !== undefined) kicked.until = event.until;
          this.d.connections.sendRaw(conn, JSON.stringify(kicked));
        }
        break;
      }
    }
  }

  /** Loads `room` (held until `fn` releases it); the connection waits meanwhile. */
  private withRoom(
    conn: Connection,
    room: string,
    id: string | undefined,
    fn: (r: Replica<Connection>) => void,
  ): void {
    conn.busy = true;
    const replica = this.d.replicas.acquire(room);
    replica.whenLoaded((err) => {
      if (conn.state === "closed") return this.d.replicas.release(replica);
      if (err !== undefined) {
        this.d.replicas.release(replica);
        this.failed(conn, err, id);
        return;
      }
      fn(replica);
    });
  }

  /** An engine error answered as `internal`; true when there was one. */
  private failed(conn: Connection, err: unknown, id: string | undefined): boolean {
    if (err === undefined || err === null) return false;
    if (conn.state === "closed") return true;
    this.d.log.log("error", "user_rooms_failed", { conn: conn.id, ...describeError(err) });
    this.d.requests.fail(conn, "internal", "the server could not do that now; try again", id);
    this.d.unblock(conn);
    return true;
  }
}
