/** One client connection as the Redis hub keeps it: its room view, its claim in Redis, and the frames that wait on Redis. */
import type { ClientMessage, ConnectParams } from "../../protocol";
import type { HubLimits } from "../hub";
import type { Peer } from "../peer";

export { safely } from "../peer";

import { ConnectionLimits } from "../rate-limit";
import type { RoomView } from "./room-view";

export interface RedisOpenParams extends ConnectParams {
  fixedNick?: string;
}

export class RedisConnection {
  state: "pending" | "live" | "closed" = "pending";
  view: RoomView<RedisConnection> | null = null;
  nick = "";
  key = "";
  /** The resume token: the session in Redis. */
  session = "";
  /** Holds the users entry `key` in `view`. */
  claimed = false;
  subscribed: string | null = null;
  fixedNick: string | undefined;
  lastTypingAt = Number.NEGATIVE_INFINITY;
  /** Waiting for Redis: later frames wait too, so they apply in the order they were sent. */
  busy = false;
  deferred: ClientMessage[] = [];
  lateAcks: Array<{ id: string; seq: number }> = [];
  readonly limits: ConnectionLimits;

  constructor(
    readonly id: string,
    readonly peer: Peer,
    limits: HubLimits,
    now: number,
  ) {
    this.limits = new ConnectionLimits(limits, now);
  }
}
