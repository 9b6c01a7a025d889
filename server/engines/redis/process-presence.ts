/**
 * This process's presence in Redis: a heartbeat key that lives only while it is renewed, and the sweep
 * that removes the users of every process whose heartbeat expired, with a leave event each.
 *
 * A heartbeat counts only once Redis answered it within the command timeout; until then this process
 * does not take itself for alive (it sweeps no one). Whether it was swept meanwhile is for Redis to
 * say: the next heartbeat that is answered tells, and then this process registers again and claims
 * its users again (`swept`) rather than dropping them. Redis's own clock judges expiry, and after a
 * silence of every process (Redis frozen, down or restarted) no one is swept for one expiry (scripts.ts).
 * With partitions (key-space.ts) the process beats and sweeps in each: a partition whose primary
 * failed over and lost the newest beat says "swept", and the process registers again everywhere.
 */
import { monotonicNow } from "../../chat/clock";
import type { Logger } from "../../chat/log";
import type { Inflight } from "./inflight";
import type { KeySpace } from "./key-space";
import { type RedisLink, runScript } from "./redis-link";
import { HEARTBEAT, SWEEP } from "./scripts";

export interface PresenceOptions {
  link: RedisLink;
  keys: KeySpace;
  procId: string;
  /** A heartbeat this old is dead. */
  ttlMs: number;
  maxLen: string;
  resumeTtlMs: number;
  log: Logger;
  inflight: Inflight;
  /** This process was swept (presumed dead) and is registered again: its users must be claimed again. */
  swept: () => void;
}

export class ProcessPresence {
  private registered = false;
  /** Until when this process's heartbeat key surely lives: the send time of the last answered beat, plus the expiry. */
  private confirmedUntil = 0;
  /** No sweeping before this time: after this process failed to beat, it is the one in doubt. */
  private sweepNotBefore = 0;
  private beating: Promise<void> | undefined;
  private timers: Array<ReturnType<typeof setInterval>> = [];

  constructor(private readonly o: PresenceOptions) {}

  /** True while the last heartbeat answered in time still holds this process's key alive. */
  get alive(): boolean {
    return monotonicNow() < this.confirmedUntil;
  }

  /** Beats now, unless a beat is already on its way (then waits for that one). */
  beat(): Promise<void> {
    if (!this.beating) {
      this.beating = this.beatOnce().finally(() => {
        this.beating = undefined;
      });
    }
    return this.beating;
  }

  /** Beats and sweeps on timers from now on. */
  startTimers(): void {
    const { ttlMs, inflight } = this.o;
    const beat = setInterval(
      () =>
        inflight.track(
          this.beat().catch(() => {
            this.sweepNotBefore = monotonicNow() + ttlMs;
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
    if (!this.alive || monotonicNow() < this.sweepNotBefore) return;
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

  private async beatOnce(): Promise<void> {
    const { link, keys, procId, ttlMs } = this.o;
    const sentAt = monotonicNow();
    const ttl = Math.max(1, Math.round(ttlMs));
    const registered = this.registered ? "1" : "0";
    const replies = await Promise.all(
      keys.partitions.map((prefix) => runScript(link, HEARTBEAT, [prefix, procId, ttl, registered])),
    );
    if (replies.every((alive) => alive === 1)) {
      this.registered = true;
      this.confirmedUntil = sentAt + ttlMs;
      return;
    }
    // Declared dead while it could not beat: its users were removed from Redis. Register again
    // first (so no sweep removes what follows), then claim them again.
    this.o.log.log("warn", "redis_process_was_swept", { proc: procId });
    this.registered = false;
    await this.beatOnce();
    this.o.swept();
  }

  /** `only`: "" for every dead process, or the one process to remove. Resolves to the users removed. */
  private async sweepScript(only: string): Promise<number> {
    const { keys, maxLen, resumeTtlMs, procId, ttlMs } = this.o;
    const ttl = Math.max(1, Math.round(ttlMs));
    const removed = await Promise.all(
      keys.partitions.map((prefix) =>
        runScript(this.o.link, SWEEP, [prefix, maxLen, resumeTtlMs, only, procId, ttl]),
      ),
    );
    return removed.reduce((n: number, r) => n + Number(r), 0);
  }
}
