/**
 * A v2 connection's arrival: its user is loaded (or made), its nickname checked free in all of its
 * rooms, every room entered, and then, in one turn, its welcome sent and its socket subscribed to
 * every room, so the welcome's RoomStates and the live stream meet without gap or duplicate. A room
 * joined later (by this connection or another of the user's) is announced the same way with `joined`.
 */
import { CLOSE, firstFreeNick, nickKey, type v2 } from "../../../protocol";
import type { Connection } from "../connection";
import type { Connections } from "../connections";
import { NickTakenError } from "../engine";
import { describeError, type Logger } from "../log";
import type { Replica } from "../replica";
import type { Replicas } from "../replicas";
import { randomToken } from "../tokens";
import type { Membership, UserStore } from "../users";
import type { Memberships } from "./memberships";
import { countFor, roomState } from "./room-state";
import { UserConn, type UsersHere } from "./user-conn";

/** What the runtime learnt of a v2 connection before its upgrade. */
export interface V2Open {
  userId: string;
  /** Set when the user was minted for this connection. */
  identityToken?: string | undefined;
  mod: boolean;
  /** The wanted nickname (a new user's), or the one its access token fixes. */
  nick?: string | undefined;
  fixedNick?: boolean | undefined;
  /** A room to join on arrival. */
  room?: string | undefined;
}

export interface UserEntryDeps {
  users: UserStore;
  replicas: Replicas;
  connections: Connections;
  memberships: Memberships;
  usersHere: UsersHere;
  log: Logger;
  /** The connection has its welcome: the frames it sent meanwhile may run now. */
  unblock: (conn: Connection) => void;
  /** Joins `room` for a welcomed connection (the `join` request), used for `room=` on arrival. */
  join: (conn: Connection, room: string) => void;
}

export class UserEntry {
  constructor(private readonly d: UserEntryDeps) {}

  open(conn: Connection, o: V2Open): void {
    const { users, connections, log } = this.d;
    conn.busy = true;
    conn.userId = o.userId;
    const giveUp = (err: unknown) => {
      if (conn.state === "closed") return;
      log.log("error", "user_open_failed", { conn: conn.id, user: o.userId, ...describeError(err) });
      connections.evict(conn, CLOSE.internal, "the chat store is unavailable; try again");
    };
    users.load(o.userId, (err, record) => {
      if (err !== undefined && err !== null) return giveUp(err);
      if (conn.state === "closed") return;
      if (record) return this.arrive(conn, o, record.nick, record.rooms);
      if (o.identityToken === undefined && o.fixedNick !== true) {
        // An identity that was revoked between its check and now.
        connections.evict(conn, CLOSE.policy, "this identity was revoked");
        return;
      }
      const nick = o.nick ?? `guest-${randomToken(3)}`;
      users.create(o.userId, nick, (cErr) => {
        if (cErr !== undefined && cErr !== null) return giveUp(cErr);
        if (conn.state !== "closed") this.arrive(conn, o, nick, []);
      });
    });
  }

  private arrive(conn: Connection, o: V2Open, stored: string, rooms: readonly Membership[]): void {
    const nick = o.fixedNick === true && o.nick !== undefined ? o.nick : stored;
    // An access token's nick wins over the stored one (the token may carry a new one now).
    if (nick !== stored) this.d.users.rename(o.userId, nick, () => {});
    const user = new UserConn(o.userId, nick, o.mod, o.fixedNick === true, o.identityToken);
    for (const m of rooms) user.marks.set(m.room, m);
    conn.v2 = user;
    this.d.usersHere.add(o.userId, conn);
    if (o.room !== undefined && !user.marks.has(o.room)) {
      const room = o.room;
      this.afterWelcome(conn, () => this.d.join(conn, room));
    }
    const names = [...user.marks.keys()];
    // Loaded first, so the nickname is checked free in all of them before any is entered.
    const held = names.map((room) => this.d.replicas.acquire(room));
    let waiting = held.length + 1;
    const loaded = () => {
      if (--waiting > 0) return;
      try {
        if (conn.state !== "closed")
          this.enterAll(
            conn,
            held.filter((r) => r.loaded),
          );
      } finally {
        for (const r of held) this.d.replicas.release(r);
      }
    };
    for (const r of held) r.whenLoaded(loaded);
    loaded();
  }

  private enterAll(conn: Connection, replicas: readonly Replica<Connection>[]): void {
    const user = conn.v2 as UserConn;
    const taken = (key: string) => replicas.some((r) => r.takenFrom(user.userId, key));
    if (taken(nickKey(user.nick))) {
      const free = firstFreeNick(user.nick, taken);
      this.d.log.log("info", "user_renamed_on_arrival", { user: user.userId, from: user.nick, nick: free });
      user.nick = free;
      this.d.users.rename(user.userId, free, () => {});
    }
    let waiting = replicas.length + 1;
    const entered = (err: unknown) => {
      if (err !== undefined && conn.state !== "closed") {
        const why = err instanceof NickTakenError ? err.message : describeError(err).error;
        this.d.connections.resync(conn, `could not enter a room: ${why}`);
        return;
      }
      if (--waiting === 0) this.welcome(conn);
    };
    for (const r of replicas) this.d.memberships.enter(conn, r.name, (_m, err) => entered(err));
    entered(undefined);
  }

  /** Runs `fn` once no presence is held back in any of the connection's rooms. */
  private whenQuiet(conn: Connection, fn: () => void): void {
    const busy = [...(conn.v2?.rooms.values() ?? [])]
      .map((m) => m.replica)
      .find((r) => r !== null && r.held.length > 0);
    if (!busy) fn();
    else busy.at(busy.lastN, () => this.whenQuiet(conn, fn));
  }

  private welcome(conn: Connection): void {
    const user = conn.v2 as UserConn;
    this.whenQuiet(conn, () => {
      if (conn.state === "closed") return;
      const members = [...user.rooms.values()];
      countFor(this.d.users, user.userId, members, user.marks, (err, counted) => {
        if (conn.state === "closed") return;
        if (err !== undefined && err !== null) {
          this.d.log.log("error", "welcome_failed", { conn: conn.id, ...describeError(err) });
          this.d.connections.evict(conn, CLOSE.internal, "could not read your rooms; try again");
          return;
        }
        if (members.some((m) => (m.replica?.held.length ?? 0) > 0)) return this.welcome(conn);
        const rooms: v2.RoomState[] = members.map((m, i) => {
          const replica = m.replica as Replica<Connection>;
          const mark = user.marks.get(replica.name);
          const peer = mark?.peer === undefined ? undefined : counted?.peers.get(mark.peer);
          return roomState(replica, mark, counted?.counts[i] ?? { unread: 0, mentions: 0 }, peer);
        });
        for (const m of members) this.d.memberships.goLive(m);
        conn.state = "live";
        user.welcomed = true;
        const welcome: v2.Welcome = {
          type: "welcome",
          protocol: 2,
          connectionId: conn.id,
          user: { userId: user.userId, nick: user.nick },
          rooms,
        };
        if (user.identityToken !== undefined) welcome.identityToken = user.identityToken;
        this.d.connections.sendRaw(conn, JSON.stringify(welcome));
        const after = this.pending.get(conn);
        this.pending.delete(conn);
        conn.busy = false;
        for (const fn of after ?? []) fn();
        // A join asked for on arrival keeps the connection waiting until its `joined`.
        if (!conn.busy) this.d.unblock(conn);
      });
    });
  }

  private readonly pending = new Map<Connection, Array<() => void>>();

  private afterWelcome(conn: Connection, fn: () => void): void {
    const list = this.pending.get(conn);
    if (list) list.push(fn);
    else this.pending.set(conn, [fn]);
  }

  /**
   * A room the user joined (here or on another connection): entered, then announced with `joined`
   * once its join is applied here. Before the welcome it simply joins the welcome's rooms.
   */
  announce(conn: Connection, mark: Membership, done?: () => void): void {
    const user = conn.v2;
    if (!user || conn.state === "closed") {
      done?.();
      return;
    }
    user.marks.set(mark.room, mark);
    if (user.rooms.has(mark.room) || user.entering.has(mark.room)) {
      done?.();
      return;
    }
    this.d.memberships.enter(conn, mark.room, (member, err) => {
      if (err !== undefined || !member) {
        if (err !== undefined && conn.state !== "closed") {
          const why = err instanceof NickTakenError ? err.message : describeError(err).error;
          this.d.connections.resync(conn, `could not enter ${mark.room}: ${why}`);
        }
        return done?.();
      }
      if (!user.welcomed) return done?.();
      this.sendJoined(conn, member, done);
    });
  }

  /** `joined` for a membership, counted, sent in the turn its socket subscribes. */
  sendJoined(conn: Connection, member: Connection, done?: () => void): void {
    const user = conn.v2 as UserConn;
    const replica = member.replica as Replica<Connection>;
    const go = () =>
      countFor(this.d.users, user.userId, [member], user.marks, (err, counted) => {
        if (conn.state === "closed" || member.state === "closed") return done?.();
        if (err !== undefined && err !== null) {
          this.d.connections.evict(conn, CLOSE.internal, "could not read the room; try again");
          return done?.();
        }
        if (replica.held.length > 0) return replica.at(replica.lastN, go);
        const mark = user.marks.get(replica.name);
        const peer = mark?.peer === undefined ? undefined : counted?.peers.get(mark.peer);
        const state = roomState(replica, mark, counted?.counts[0] ?? { unread: 0, mentions: 0 }, peer);
        this.d.memberships.goLive(member);
        this.d.connections.sendRaw(conn, JSON.stringify({ type: "joined", ...state }));
        done?.();
      });
    replica.at(replica.lastN, go);
  }
}
