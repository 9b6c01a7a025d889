/** Open connections per client address, so one host cannot take every slot of the process. */
export class IpLimit {
  private readonly open = new Map<string, number>();

  constructor(readonly max: number) {}

  /** Takes a slot for `ip`, or returns false when it holds `max` already. */
  acquire(ip: string): boolean {
    const n = this.open.get(ip) ?? 0;
    if (n >= this.max) return false;
    this.open.set(ip, n + 1);
    return true;
  }

  release(ip: string): void {
    const n = this.open.get(ip) ?? 0;
    if (n <= 1) this.open.delete(ip);
    else this.open.set(ip, n - 1);
  }

  count(ip: string): number {
    return this.open.get(ip) ?? 0;
  }
}

/**
 * New connections a second per client address (a token bucket each), so one host cannot churn
 * thousands of connections a second. Full buckets are forgotten, so the map holds only the busy.
 */
export class ConnectRate {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    readonly rate: number,
    readonly burst: number,
  ) {}

  /** Takes a token for `key` at `now` (ms, monotonic), or returns false when it has none. */
  take(key: string, now: number): boolean {
    if (this.rate <= 0) return true;
    const b = this.buckets.get(key);
    const tokens = b ? Math.min(this.burst, b.tokens + ((now - b.at) * this.rate) / 1000) : this.burst;
    if (tokens < 1) {
      if (b) {
        b.tokens = tokens;
        b.at = now;
      }
      return false;
    }
    this.buckets.set(key, { tokens: tokens - 1, at: now });
    if (this.buckets.size > 10_000) this.prune(now);
    return true;
  }

  /** Drops the buckets that have refilled: they hold nothing a new one would not. */
  prune(now: number): void {
    for (const [key, b] of this.buckets) {
      if (b.tokens + ((now - b.at) * this.rate) / 1000 >= this.burst) this.buckets.delete(key);
    }
  }
}
