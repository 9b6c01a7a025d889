/** An in-memory stand-in for Bun's sockets and pub/sub topics, so the chat logic runs without a network. */
import { decodeServerMessage, type ServerMessage, v2 } from "../../protocol";
import type { Fanout, Peer } from "../../server/chat/peer";

export class FakePeer implements Peer {
  readonly inbox: ServerMessage[] = [];
  readonly topics = new Set<string>();
  closedWith: number | undefined;
  /** Called when the server closes this socket, as Bun's close handler would be. */
  onClose: (code: number) => void = () => {};

  /** What a v2 socket received (its frames are checked with v2's schemas). */
  readonly inbox2: v2.ServerMessageV2[] = [];
  /** Frames that did not decode (the server's peer calls swallow the throw, so tests look here). */
  readonly invalid: string[] = [];

  constructor(
    private readonly net: FakeNet,
    readonly version: 1 | 2 = 1,
  ) {}

  deliver(data: string): void {
    if (this.closedWith !== undefined) return;
    if (this.version === 2) {
      const d2 = v2.decodeServerMessageV2(data);
      if (!d2.ok) {
        this.invalid.push(data);
        throw new Error(`server sent an invalid v2 frame: ${d2.error.message}: ${data}`);
      }
      this.inbox2.push(d2.value);
      return;
    }
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

  peer(version: 1 | 2 = 1): FakePeer {
    return new FakePeer(this, version);
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
