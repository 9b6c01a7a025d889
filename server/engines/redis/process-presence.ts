/**
 * This process's presence in Redis: a heartbeat key that lives only while it is renewed, and the sweep
 * that removes the users of every process whose heartbeat expired, with a leave event each.
 */
import type { RedisClient } from "bun";
import type { Logger } from "../../chat/log";
import type { Inflight } from "./inflight";
import { runScript } from "./redis-link";
import { HEARTBEAT, SWEEP } from "./scripts";

export interface PresenceOptions {
  client: RedisClient;
  prefix: string;
  procId: string;
  /** A heartbeat this old is dead. */
  ttlMs: number;
  maxLen: string;
  resumeTtlMs: number;
  log: Logger;
  inflight: Inflight;
  /** This process was swept while Redis was out of reach: its users are gone from Redis. */
  presumedDead: () => void;
}

export class ProcessPresence {
  private registered = false;
  /**
   * No sweeping before this time: after Redis was out of reach, every heartbeat may have expired, so
   * the first process back waits one expiry for the others to beat again before it calls anyone dead.
   */
  private sweepNotBefore = 0;
  private timers: Array<ReturnType<typeof setInterval>> = [];

  constructor(private readonly o: PresenceOptions) {}

  async beat(): Promise<void> {
    const { prefix, procId, ttlMs } = this.o;
    const alive = await runScript(this.o.client, HEARTBEAT, [
      prefix,
      procId,
      ttlMs,
      this.registered ? "1" : "0",
    ]);
    if (alive === 1) {
      this.registered = true;
      return;
    }
    // Declared dead while Redis was out of reach: our users were removed; they must come back.
    this.o.log.log("warn", "redis_process_was_swept", { proc: procId });
    this.registered = false;
    this.o.presumedDead();
    await this.beat();
  }

  /** Beats and sweeps on timers from now on. */
  startTimers(): void {
    const { ttlMs, inflight } = this.o;
    const beat = setInterval(
      () =>
        inflight.track(
          this.beat().catch(() => {
            this.sweepNotBefore = Date.now() + ttlMs;
          }),
        ),
      Math.max(50, ttlMs / 3),
    );
    const sweep = setInterval(() => inflight.track(this.sweepDead()), Math.max(50, ttlMs / 5));
    beat.unref?.();
    sweep.unref?.();
    this.timers.push(beat, sweep);
  }

  stopTimers(): void {
    for (const t of this.timers) clearInterval(t);
  }

  async sweepDead(): Promise<void> {
    if (Date.now() < this.sweepNotBefore) return;
    try {
      const removed = await this.sweepScript("");
      if (typeof removed === "number" && removed > 0)
        this.o.log.log("info", "redis_swept_dead_users", { removed });
    } catch {
      // Redis away: the next sweep tries again.
    }
  }

  /** A clean stop: this process and its users leave Redis now rather than at expiry. */
  async retire(): Promise<void> {
    await this.sweepScript(this.o.procId);
  }

  /** `only`: "" for every dead process, or the one process to remove. Resolves to the users removed. */
  private sweepScript(only: string): Promise<unknown> {
    const { prefix, maxLen, resumeTtlMs } = this.o;
    return runScript(this.o.client, SWEEP, [prefix, maxLen, resumeTtlMs, only]);
  }
}
