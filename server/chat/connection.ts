/** One client connection as the core keeps it: its room, its claim, and the frames waiting on the engine. */
import type { ClientMessage, v2 } from "../../protocol";
import type { EngineConn } from "./engine";
import type { ChatLimits } from "./limits";
import type { Peer } from "./peer";
import { ConnectionLimits } from "./rate-limit";
import type { Replica } from "./replica";
import type { UserConn } from "./v2/user-conn";

export class Connection implements EngineConn {
  /** pending: waiting for its welcome; live: subscribed to its room. */
  state: "pending" | "live" | "closed" = "pending";
  replica: Replica<Connection> | null = null;
  nick = "";
  /** The resume token: its session in the engine. */
  session = "";
  /** Holds its nickname's claim in its room (a resumed connection may have taken it over). */
  claimed = false;
  /** The topic it is subscribed to, if any. */
  subscribed: string | null = null;
  fixedNick: string | undefined;
  /** Its client address (an IPv4 address or an IPv6 /64): what the per-address budgets count by. */
  client = "";
  lastTypingAt = Number.NEGATIVE_INFINITY;
  /** Waiting for the engine (a claim, a rename): later frames wait too, so they apply in order. */
  busy = false;
  /** Made when first needed: most connections never defer a frame (memory per idle connection). */
  deferred: Array<ClientMessage | v2.ClientMessageV2> | undefined;
  /**
   * Chats sent before its welcome and not yet stored, and the newest seq those got: the welcome waits
   * until the replica has them, so it carries every chat its connection sent before it.
   */
  unsettledChats = 0;
  awaitSeq = 0;
  /** Acks owed before its welcome: sent right after it, as the welcome carries their chats. */
  lateAcks: Array<{ id: string; seq: number }> | undefined;
  /** v2: the user it belongs to. */
  userId: string | undefined;
  /** v2: its user, rooms and welcome (see v2/user-conn.ts); on a membership, the connection's. */
  v2: UserConn | undefined;
  /**
   * v2: a membership is a Connection of its own in one room (its replica, claim and acks), sending
   * through its connection's socket; `owner` is that connection. Undefined on a connection itself.
   */
  owner: Connection | undefined;
  readonly limits: ConnectionLimits;

  constructor(
    readonly id: string,
    readonly peer: Peer,
    limits: ChatLimits | ConnectionLimits,
    now: number,
  ) {
    this.limits = limits instanceof ConnectionLimits ? limits : new ConnectionLimits(limits, now);
  }
}
