/**
 * The server's own liveness check. Bun's idle timer is reset by every frame the server sends, so in
 * a busy room a dead peer would never time out; here only what the peer sends (pongs, frames) counts.
 */
export class Heartbeat<S> {
  private readonly lastHeard = new Map<S, number>();

  constructor(readonly timeoutMs: number) {}

  /** A new socket, or one that just sent something: it is alive now. */
  heard(socket: S, now: number): void {
    this.lastHeard.set(socket, now);
  }

  forget(socket: S): void {
    this.lastHeard.delete(socket);
  }

  get size(): number {
    return this.lastHeard.size;
  }

  sockets(): IterableIterator<S> {
    return this.lastHeard.keys();
  }

  /** Sockets silent for longer than the timeout, and the rest, which are due a ping. */
  sweep(now: number): { dead: S[]; alive: S[] } {
    const dead: S[] = [];
    const alive: S[] = [];
    for (const [socket, at] of this.lastHeard) (now - at > this.timeoutMs ? dead : alive).push(socket);
    return { dead, alive };
  }
}
