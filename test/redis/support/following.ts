/**
 * The loop every room follower of the Redis tests runs: stay in a room whatever happens, and when the
 * connection closes take what it showed and reconnect to the next process in turn, until stopped.
 * cluster.ts's Follower (seqs only) and cluster-processes.ts's readers (seq -> text) build on it.
 */

import type { ServerProcess } from "../../support/server-process";
import { sleep } from "../../support/timing";

/** What a follower needs of its connection: how it ended, and a way to end it. */
export interface Followed {
  readonly closed: Promise<number>;
  readonly closeCode: number | undefined;
  close(): Promise<unknown>;
}

export abstract class Following<C extends Followed> {
  /** The close code of every connection that ended while following. */
  readonly closes: number[] = [];
  protected client: C | undefined;
  private turn: number;
  private stopped = false;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly servers: () => ServerProcess[],
    readonly room: string,
    readonly nick: string,
    first = 0,
  ) {
    this.turn = first;
  }

  /** The connection open now, if any. */
  get live(): C | undefined {
    return this.client?.closeCode === undefined ? this.client : undefined;
  }

  async start(): Promise<void> {
    await this.attachFirst();
    this.running = this.follow();
  }

  /** Stops following; what the last connection showed has been taken in. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.client?.close();
    await this.running;
  }

  /** Stops at once, for cleanup after a failure. */
  halt(): void {
    this.stopped = true;
    void this.client?.close();
  }

  /** The process to connect to next: each (re)connect goes to the next one of the list in turn. */
  protected nextServer(): ServerProcess {
    const list = this.servers();
    return list[this.turn++ % list.length] as ServerProcess;
  }

  /** The first connect; a subclass may wait longer for it than for a reconnect. */
  protected attachFirst(): Promise<void> {
    return this.attach();
  }

  /** Connects to `nextServer()`, setting `client`. */
  protected abstract attach(): Promise<void>;
  /** Takes what one connection showed, once it has closed. */
  protected abstract absorb(client: C): void;
  /** Reconnects tried (100 ms apart) before `gaveUp`. */
  protected abstract readonly reconnectTries: number;
  /** Called when no reconnect succeeded; following ends there (a throw reaches `stop`). */
  protected abstract gaveUp(): void;

  private async follow(): Promise<void> {
    while (!this.stopped) {
      const client = this.client as C;
      const code = await client.closed;
      this.absorb(client);
      if (this.stopped) return;
      this.closes.push(code);
      for (let tries = 0; !this.stopped; tries++) {
        try {
          await this.attach();
          break;
        } catch {
          if (tries > this.reconnectTries) {
            this.gaveUp();
            return;
          }
          await sleep(100);
        }
      }
    }
  }
}
