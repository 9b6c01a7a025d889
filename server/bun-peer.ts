/** Maps a Bun ServerWebSocket onto the chat logic's Peer (and the server's SocketLink): translation only. */
import type { ServerWebSocket } from "bun";
import type { SocketLink } from "./chat-server";

export class BunPeer<T> implements SocketLink {
  constructor(private readonly ws: ServerWebSocket<T>) {}

  send(data: string): number {
    return this.ws.send(data);
  }

  bufferedAmount(): number {
    return this.ws.getBufferedAmount();
  }

  subscribe(topic: string): void {
    this.ws.subscribe(topic);
  }

  unsubscribe(topic: string): void {
    this.ws.unsubscribe(topic);
  }

  publishOthers(topic: string, data: string): void {
    this.ws.publish(topic, data);
  }

  close(code: number, reason: string): void {
    this.ws.close(code, reason);
  }

  ping(): void {
    this.ws.ping();
  }

  terminate(): void {
    this.ws.terminate();
  }
}
