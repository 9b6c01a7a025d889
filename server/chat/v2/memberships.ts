/**
 * A v2 connection's rooms. Each is a membership: a Connection of its own in that room (its replica,
 * its share of the user's claim, its acks), sending through the connection's socket. Entering claims
 * the room for the user (only the user's first connection logs a join); the membership is ready once
 * this process has applied that join, and live once its socket is subscribed.
 */
import type { Connection } from "../connection";
import { Connection as Member } from "../connection";
import type { Connections } from "../connections";
import type { Engine, EngineConn } from "../engine";
import type { Logger } from "../log";
import { safely } from "../peer";
import type { Replicas } from "../replicas";

export interface MembershipsDeps {
  engine: Engine<EngineConn>;
  replicas: Replicas;
  connections: Connections;
  log: Logger;
}

export class Memberships {
  constructor(private readonly d: MembershipsDeps) {}

  /**
   * Enters `room` for the v2 connection `conn` under its user's nick. `ready` gets the membership
   * once its join is applied here, or an error (a NickTakenError when someone else holds the nick),
   * or nothing when the connection went away meanwhile.
   */
  enter(
    conn: Connection,
    room: string,
    ready: (member: Connection | undefined, err?: unknown) => void,
  ): void {
    const user = conn.v2;
    if (user === undefined) {
      ready(undefined, new Error("not a v2 connection"));
      return;
    }
    const { replicas, engine } = this.d;
    user.entering.add(room);
    const replica = replicas.acquire(room);
    const fail = (err: unknown) => {
      user.entering.delete(room);
      replicas.release(replica);
      ready(undefined, err);
    };
    replica.whenLoaded((loadErr) => {
      if (loadErr !== undefined) return fail(loadErr);
      if (conn.state === "closed") return fail(undefined);
      const member = new Member(`${conn.id}/${room}`, conn.peer, conn.limits, 0);
      member.owner = conn;
      member.userId = user.userId;
      member.v2 = user;
      member.nick = user.nick;
      engine.enter(member, { room, user: { userId: user.userId, nick: user.nick } }, (err, claim) => {
        if (err !== undefined && err !== null) return fail(err);
        if (!claim) return fail(new Error("the engine answered no claim"));
        member.session = claim.session;
        member.nick = claim.nick;
        if (conn.state === "closed" || replica.broken) {
          engine.leave(member, room, true);
          return fail(replica.broken ? new Error(`${room} went out of step`) : undefined);
        }
        member.claimed = true;
        member.replica = replica;
        replica.members.set(member.id, member);
        replica.v2Members++;
        user.rooms.set(room, member);
        replica.at(claim.at, () => {
          user.entering.delete(room);
          ready(conn.state === "closed" ? undefined : member);
        });
      });
    });
  }

  /** Subscribes the connection's socket to the membership's room: from now on it hears it live. */
  goLive(member: Connection): void {
    const replica = member.replica;
    if (!replica || member.state === "closed") return;
    if (member.subscribed !== replica.topicV2) {
      safely(() => member.peer.subscribe(replica.topicV2), this.d.log);
      member.subscribed = replica.topicV2;
    }
    member.state = "live";
  }

  /** Takes the connection out of `room` (the user's last connection there logs the leave). */
  leave(conn: Connection, room: string): boolean {
    const member = conn.v2?.rooms.get(room);
    if (!member) return false;
    conn.v2?.rooms.delete(room);
    this.d.connections.leaveRoom(member, false);
    member.state = "closed";
    return true;
  }
}
