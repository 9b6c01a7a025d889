/** An in-memory stand-in for Bun's sockets and pub/sub topics, so the chat logic runs without a network. */
import { decodeServerMessage, type ServerMessage } from "../../protocol";
import type { Fanout, Peer } from "../../server/chat/peer";

export class FakePeer implements Peer {
  readonly inbox: ServerMessage[] = [];
  readonly topics = new Set<string>();
  closedWith: number | undefined;
  /** Called when the server closes this socket, as Bun's close handler would be. */
  onClose: (code: number) => void = () => {};

  constructor(private readonly net: FakeNet) {}

  deliver(data: string): void {
    if (this.closedWith !== undefined) return;
    const decoded = decodeServerMessage(data);
    if (!decoded.ok) throw new Error(`server sent an invalid frame: ${decoded.error.message}: ${data}`);
    this.inbox.push(decoded.value);
  }

  /** Bytes a test pretends are still queued for this socket. */
  buffered = 0;

  send(data: string): number {
    this.deliver(data);
    return data.length;
  }

  bufferedAmount(): number {
    return this.buffered;
  }

  subscribe(topic: string): void {
    this.topics.add(topic);
    this.net.join(topic, this);
  }

  unsubscribe(topic: string): void {
    this.topics.delete(topic);
    this.net.leave(topic, this);
  }

  publishOthers(topic: string, data: string): void {
    this.net.publish(topic, data, this);
  }

  close(code: number): void {
    if (this.closedWith !== undefined) return;
    this.closedWith = code;
    for (const t of this.topics) this.net.leave(t, this);
    this.topics.clear();
    this.onClose(code);
  }
}

export class FakeNet implements Fanout {
  private readonly topics = new Map<string, Set<FakePeer>>();

  peer(): FakePeer {
    return new FakePeer(this);
  }

  join(topic: string, peer: FakePeer): void {
    const set = this.topics.get(topic) ?? new Set();
    set.add(peer);
    this.topics.set(topic, set);
  }

  leave(topic: string, peer: FakePeer): void {
    this.topics.get(topic)?.delete(peer);
  }

  publish(topic: string, data: string, except?: FakePeer): void {
    for (const peer of this.topics.get(topic) ?? []) if (peer !== except) peer.deliver(data);
  }
}
