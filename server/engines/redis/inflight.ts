/** The Redis work a hub has in flight: a failure is logged, never unhandled, and stop and quiesce can wait for it all. */
import { monotonicNow } from "../../chat/clock";
import { describeError, type Logger } from "../../chat/log";
import { sleep } from "./redis-link";

export class Inflight {
  private readonly tasks = new Set<Promise<unknown>>();

  constructor(private readonly log: Logger) {}

  get size(): number {
    return this.tasks.size;
  }

  track(p: Promise<unknown>): void {
    const tracked = p.catch((err) => this.log.log("error", "redis_task_failed", describeError(err)));
    this.tasks.add(tracked);
    tracked.finally(() => this.tasks.delete(tracked));
  }

  /** Waits until nothing is in flight, or `timeoutMs` has passed. */
  async settle(timeoutMs: number): Promise<void> {
    const deadline = monotonicNow() + timeoutMs;
    while (this.tasks.size > 0 && monotonicNow() < deadline) {
      await Promise.race([Promise.all([...this.tasks]), sleep(Math.max(1, deadline - monotonicNow()))]);
    }
  }
}
