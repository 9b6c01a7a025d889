/**
 * Maps a Deno server WebSocket onto the chat's Peer (and the server's SocketLink): translation only.
 * Deno has no pub/sub, so subscriptions go to the entry's topic map, and the socket leaves all of
 * its topics when it closes.
 */
import type { SocketLink } from "../chat-server";
import type { Topics } from "./topics";

/** The part of Deno's WebSocket used here (a plain object does in tests). */
export interface DenoSocket {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  readonly bufferedAmount: number;
}

export class DenoPeer implements SocketLink {
  private readonly topics = new Set<string>();

  constructor(
    private readonly ws: DenoSocket,
    private readonly map: Topics<DenoPeer>,
  ) {}

  /** Deno queues every frame (it never drops one): the hub watches `bufferedAmount` instead. */
  send(data: string): undefined {
    this.ws.send(data);
    return undefined;
  }

  bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  subscribe(topic: string): void {
    this.topics.add(topic);
    this.map.subscribe(topic, this);
  }

  unsubscribe(topic: string): void {
    this.topics.delete(topic);
    this.map.unsubscribe(topic, this);
  }

  publishOthers(topic: string, data: string): void {
    this.map.publishOthers(topic, data, this);
  }

  close(code: number, reason: string): void {
    this.ws.close(code, reason);
  }

  /** Deno pings idle sockets itself (`idleTimeout`); JavaScript cannot send a ping there. */
  ping(): void {}

  /** Deno has no abrupt close: the closing handshake is started, and the socket is gone from every topic. */
  terminate(): void {
    this.ws.close(1001, "no answer");
    this.left();
  }

  /** The socket closed: out of every topic. */
  left(): void {
    for (const topic of this.topics) this.map.unsubscribe(topic, this);
    this.topics.clear();
  }
}
