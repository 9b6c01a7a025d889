/** Chat hubs over one private redis-server without sockets (FakeNet), and a look into the Redis keys behind them. */
import { RedisClient } from "bun";
import type { ClientMessage } from "../../../protocol";
import type { Connection } from "../../../server/chat/connection";
import { ChatHub } from "../../../server/chat/hub";
import { chatLimits } from "../../../server/chat/limits";
import { sidOf } from "../../../server/chat/tokens";
import { DEFAULT_CONFIG } from "../../../server/config";
import { RedisEngine, type RedisEngineOptions } from "../../../server/engines/redis/redis-engine";
import { FakeNet, type FakePeer } from "../../support/fake-net";
import { usersFrom } from "../../support/user-list";

export interface Member {
  hub: ChatHub;
  peer: FakePeer;
  conn: Connection;
}

/** One process: a hub on its own fake network, over a Redis engine given `options`. */
export class HubProcess {
  readonly net = new FakeNet();
  readonly hub: ChatHub;
  readonly engine: RedisEngine<Connection>;

  constructor(url: string, prefix: string, options: Partial<RedisEngineOptions> = {}) {
    const limits = { ...chatLimits(DEFAULT_CONFIG), rateLimit: 0 };
    this.engine = new RedisEngine<Connection>({
      url,
      prefix,
      resumeTtlMs: limits.resumeTtlMs,
      dedupeWindow: limits.dedupeWindow,
      schedule: (fn) => setTimeout(fn, 0),
      ...options,
    });
    this.hub = new ChatHub({ engine: this.engine, fanout: this.net, limits });
  }

  /** Opens a connection as Bun's open handler would; its close reaches the hub. */
  open(room: string, nick?: string): Member {
    const peer = this.net.peer();
    const conn = this.hub.open(peer, { room, ...(nick === undefined ? {} : { nick }) });
    peer.onClose = (code) => this.hub.close(conn, code);
    return { hub: this.hub, peer, conn };
  }
}

/** A frame from the member's client. */
export function send(m: Member, msg: ClientMessage): void {
  m.hub.receive(m.conn, JSON.stringify(msg));
}

/** The user list a member holds: its welcome, then presence events in order. */
export function listOf(m: Member): string[] {
  return usersFrom(m.peer.inbox).sort();
}

/** Lets every hub write and deliver everything pending (twice: one's writes reach the other's log). */
export async function settle(...hubs: ChatHub[]): Promise<void> {
  for (let round = 0; round < 2; round++) for (const hub of hubs) await hub.quiesce();
}

/** Reads Redis directly, under one key prefix. */
export class RedisView {
  private readonly client: RedisClient;

  constructor(
    url: string,
    private readonly prefix: string,
  ) {
    this.client = new RedisClient(url);
  }

  /** The room's users hash: nickname key -> "proc|conn|session|nick". */
  async users(room: string): Promise<Record<string, string>> {
    return (await this.client.send("HGETALL", [`${this.prefix}room:${room}:users`])) as Record<
      string,
      string
    >;
  }

  async nicks(room: string): Promise<string[]> {
    return Object.values(await this.users(room))
      .map((v) => v.split("|").slice(3).join("|"))
      .sort();
  }

  /** Milliseconds left before a session key expires: -1 none, -2 no such key (by token or its SID). */
  async sessionTtl(token: string): Promise<number> {
    return (await this.client.send("PTTL", [`${this.prefix}sess:${sidOf(token)}`])) as number;
  }

  /** Every session key (not its ids) and its PTTL. */
  async sessions(): Promise<Map<string, number>> {
    const keys = (await this.client.send("KEYS", [`${this.prefix}sess:*`])) as string[];
    const out = new Map<string, number>();
    for (const key of keys) {
      if (key.endsWith(":ids") || key.endsWith(":idq")) continue;
      out.set(
        key.slice(`${this.prefix}sess:`.length),
        await this.sessionTtl(key.slice(`${this.prefix}sess:`.length)),
      );
    }
    return out;
  }

  async rooms(): Promise<Record<string, number>> {
    const flat = (await this.client.send("ZRANGE", [
      `${this.prefix}rooms`,
      "0",
      "-1",
      "WITHSCORES",
    ])) as Array<[string, number]>;
    return Object.fromEntries(flat.map(([room, n]) => [room, Number(n)]));
  }

  close(): void {
    this.client.close();
  }
}
