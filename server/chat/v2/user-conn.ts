/**
 * A v2 connection's own state: its user, its rooms (one membership each), and whether its welcome
 * has gone. And the v2 users with connections on this process, so that what one of them does (a
 * join, a read marker, a rename) reaches all of its connections here.
 */
import type { Connection } from "../connection";
import type { Membership } from "../users";

export class UserConn {
  /** Its welcome has been sent: memberships made from now on announce themselves with `joined`. */
  welcomed = false;
  /** Its memberships, by room: each a Connection of its own in that room (see Connection.owner). */
  readonly rooms = new Map<string, Connection>();
  /** The user's rooms as stored: read markers and direct-room peers, by room. */
  readonly marks = new Map<string, Membership>();
  /** Rooms being entered (a join in flight), so a second join of the same room waits for nothing. */
  readonly entering = new Set<string>();

  constructor(
    readonly userId: string,
    public nick: string,
    /** A moderator (its access token says so). */
    readonly mod: boolean,
    /** Its nickname comes from its access token and cannot be changed. */
    readonly fixedNick: boolean,
    /** Set when the server minted the user on this connection: the welcome carries it once. */
    readonly identityToken: string | undefined,
  ) {}
}

/** This process's v2 connections by user. */
export class UsersHere {
  private readonly byUser = new Map<string, Set<Connection>>();

  add(userId: string, conn: Connection): void {
    let set = this.byUser.get(userId);
    if (!set) {
      set = new Set();
      this.byUser.set(userId, set);
    }
    set.add(conn);
  }

  remove(userId: string, conn: Connection): void {
    const set = this.byUser.get(userId);
    if (!set) return;
    set.delete(conn);
    if (set.size === 0) this.byUser.delete(userId);
  }

  /** A copy, so closing them while iterating is safe. */
  of(userId: string): Connection[] {
    const set = this.byUser.get(userId);
    return set ? [...set] : [];
  }
}
