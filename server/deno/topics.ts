/**
 * Pub/sub for runtimes without it (Deno): which sockets follow which topic. Each frame is sent to
 * every subscriber in turn; a socket that fails to take it is that socket's problem only, and the
 * rest of the topic still gets the frame.
 */
import type { Fanout } from "../chat/peer";

/** What a topic member must do: take one text frame. */
export interface Subscriber {
  send(data: string): unknown;
}

export class Topics<S extends Subscriber> implements Fanout {
  private readonly members = new Map<string, Set<S>>();

  subscribe(topic: string, socket: S): void {
    let set = this.members.get(topic);
    if (set === undefined) {
      set = new Set();
      this.members.set(topic, set);
    }
    set.add(socket);
  }

  unsubscribe(topic: string, socket: S): void {
    const set = this.members.get(topic);
    if (set === undefined) return;
    set.delete(socket);
    if (set.size === 0) this.members.delete(topic);
  }

  /** To every subscriber of `topic`. */
  publish(topic: string, data: string): void {
    this.publishOthers(topic, data, undefined);
  }

  /** To every subscriber of `topic` but `except`. */
  publishOthers(topic: string, data: string, except: S | undefined): void {
    const set = this.members.get(topic);
    if (set === undefined) return;
    for (const socket of set) {
      if (socket === except) continue;
      try {
        socket.send(data);
      } catch {
        // A socket closing under us: its close event takes it out of every topic.
      }
    }
  }

  /** How many sockets follow `topic` (for tests). */
  size(topic: string): number {
    return this.members.get(topic)?.size ?? 0;
  }
}
