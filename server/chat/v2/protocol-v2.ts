/**
 * Protocol v2 in the core: its parts made and wired once, and every v2 frame dispatched. The hub
 * hands v2 connections here; v1 never comes this way.
 */
import { normalizeNick, normalizeRoom, type v2 } from "../../../protocol";
import type { ClientBudgets } from "../client-budgets";
import type { Connection } from "../connection";
import type { Connections } from "../connections";
import type { Engine, EngineConn } from "../engine";
import type { ChatLimits } from "../limits";
import type { Logger } from "../log";
import type { Metrics } from "../metrics";
import { gateOf } from "../rate-limit";
import type { Replica } from "../replica";
import type { Replicas } from "../replicas";
import type { UserEvent } from "../users";
import { AdminOps } from "./admin-ops";
import { ChangeRequests } from "./change-requests";
import { Memberships } from "./memberships";
import type { UserConn, UsersHere } from "./user-conn";
import { UserEntry, type V2Open } from "./user-entry";
import { UserRequests } from "./user-requests";
import { UserRooms } from "./user-rooms";

export interface ProtocolV2Deps {
  engine: Engine<EngineConn>;
  replicas: Replicas;
  connections: Connections;
  budgets: ClientBudgets;
  usersHere: UsersHere;
  limits: ChatLimits;
  log: Logger;
  metrics: Metrics;
  now: () => number;
  wallNow: () => number;
  /** The connection's frames that waited may run now. */
  unblock: (conn: Connection) => void;
}

export class ProtocolV2 {
  readonly entry: UserEntry;
  readonly requests: UserRequests;
  readonly rooms: UserRooms;
  readonly changes: ChangeRequests;
  readonly admin: AdminOps;

  constructor(private readonly d: ProtocolV2Deps) {
    const users = d.engine.users;
    const base = { ...d, users };
    const memberships = new Memberships(base);
    this.requests = new UserRequests(base);
    const requests = this.requests;
    const join = (conn: Connection, room: string) => this.rooms.join(conn, room);
    this.entry = new UserEntry({ ...base, memberships, join });
    this.rooms = new UserRooms({ ...base, memberships, entry: this.entry, requests });
    this.changes = new ChangeRequests({ ...base, requests });
    this.admin = new AdminOps({ ...base, changes: this.changes });
  }

  open(conn: Connection, o: V2Open): void {
    this.entry.open(conn, o);
  }

  /** Something a user did, heard by this process. */
  userEvent(userId: string, event: UserEvent): void {
    this.rooms.apply(userId, event);
  }

  /** One decoded frame of a connection that is not waiting (the hub defers it otherwise). */
  handle(conn: Connection, msg: v2.ClientMessageV2): void {
    const id = "id" in msg ? msg.id : undefined;
    const gate = gateOf(msg.type);
    if (gate !== undefined && !this.d.connections.admit(conn, gate, id)) return;
    conn.limits.passed();
    const r = this.requests;
    switch (msg.type) {
      case "chat":
        r.chat(conn, msg);
        break;
      case "sync":
        r.sync(conn, msg);
        break;
      case "history":
        r.history(conn, msg);
        break;
      case "who":
        r.who(conn, msg);
        break;
      case "typing":
        r.typing(conn, msg);
        break;
      case "read":
        r.read(conn, msg);
        break;
      case "nick":
        r.nick(conn, msg, normalizeNick(msg.nick));
        break;
      case "join":
        this.rooms.join(conn, normalizeRoom(msg.room), msg.id);
        break;
      case "part":
        this.rooms.part(conn, msg);
        break;
      case "dm":
        this.rooms.dm(conn, msg, normalizeNick(msg.nick));
        break;
      case "edit":
      case "delete":
      case "react":
      case "topic":
        this.changes.handle(conn, msg);
        break;
      case "kick":
      case "ban":
        this.moderate(conn, msg);
        break;
    }
  }

  private moderate(conn: Connection, msg: v2.ClientMessageV2 & { type: "kick" | "ban" }): void {
    const member = this.requests.member(conn, msg.room, msg.id);
    if (!member) return;
    const user = conn.v2 as UserConn;
    const actor = { nick: user.nick, userId: user.userId, mod: user.mod };
    const kick = {
      nick: normalizeNick(msg.nick),
      reason: msg.reason,
      ban: msg.type === "ban" ? { seconds: msg.seconds } : undefined,
    };
    conn.busy = true;
    this.changes.moderate(member.replica as Replica<Connection>, actor, kick, (refusal) => {
      if (refusal && conn.state !== "closed") this.requests.fail(conn, refusal.code, refusal.message, msg.id);
      this.d.unblock(conn);
    });
  }
}
