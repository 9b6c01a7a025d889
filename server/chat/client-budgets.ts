/**
 * What one client address may take from the server, over all its connections: unsent bytes held in
 * its sockets, and history read per second. A client with a thousand connections is then one
 * client, not a thousand times one: the server's memory and history work stay bounded per address.
 */
import type { Connection } from "./connection";
import type { ChatLimits } from "./limits";

interface Client {
  conns: Set<Connection>;
  /** History bytes it may still read now; negative after a large page (a debt paid back over time). */
  tokens: number;
  at: number;
}

export class ClientBudgets {
  private readonly clients = new Map<string, Client>();

  constructor(private readonly limits: ChatLimits) {}

  add(conn: Connection, now: number): void {
    let client = this.clients.get(conn.client);
    if (!client) {
      client = { conns: new Set(), tokens: this.limits.historyBytesBurst, at: now };
      this.clients.set(conn.client, client);
    }
    client.conns.add(conn);
  }

  remove(conn: Connection): void {
    const client = this.clients.get(conn.client);
    if (!client) return;
    client.conns.delete(conn);
    if (client.conns.size === 0) this.clients.delete(conn.client);
  }

  /** True while the client's history budget is not spent (a page may then take it into debt). */
  mayReadHistory(conn: Connection, now: number): boolean {
    const client = this.refill(conn, now);
    return client === undefined || client.tokens > 0;
  }

  /** Charges `bytes` of history to the connection's client. */
  chargeHistory(conn: Connection, bytes: number, now: number): void {
    const client = this.refill(conn, now);
    if (client) client.tokens -= bytes;
  }

  /**
   * The connection of this client holding the most unsent bytes, when all of them together hold
   * more than the client's share; undefined while within it.
   */
  overShare(conn: Connection): Connection | undefined {
    const client = this.clients.get(conn.client);
    if (!client) return undefined;
    let total = 0;
    let worst: Connection | undefined;
    let worstBytes = -1;
    for (const c of client.conns) {
      const bytes = c.peer.bufferedAmount();
      total += bytes;
      if (bytes > worstBytes) {
        worst = c;
        worstBytes = bytes;
      }
    }
    return total > this.limits.bufferedBytesPerClient ? worst : undefined;
  }

  /** Every client over its share, with its most backlogged connection. */
  *overShares(): Generator<Connection> {
    for (const client of this.clients.values()) {
      const first = client.conns.values().next().value;
      const worst = first === undefined ? undefined : this.overShare(first);
      if (worst) yield worst;
    }
  }

  private refill(conn: Connection, now: number): Client | undefined {
    const client = this.clients.get(conn.client);
    if (!client || this.limits.historyBytesPerSecond <= 0) return undefined;
    const { historyBytesPerSecond: rate, historyBytesBurst: burst } = this.limits;
    client.tokens = Math.min(burst, client.tokens + ((now - client.at) * rate) / 1000);
    client.at = now;
    return client;
  }
}
