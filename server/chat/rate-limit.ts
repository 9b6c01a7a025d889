/** Token bucket: `rate` tokens a second, at most `burst` saved up; rate 0 means unlimited. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  /** Takes one token if there is one. */
  take(now: number): boolean {
    if (this.rate <= 0) return true;
    const elapsed = Math.max(0, now - this.last);
    this.last = now;
    this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.rate) / 1000);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** The per-connection limits, as configured. */
export interface RateLimits {
  /** Chat messages a second per connection; 0 is unlimited. */
  rateLimit: number;
  /** Chat messages a connection may send at once before the rate applies. */
  rateBurst: number;
  /** `nick`, `join`, `history` and `who` requests a second per connection, and their burst; 0 is unlimited. */
  controlRate: number;
  controlBurst: number;
  /** Frames of any kind a second per connection, and their burst; 0 is unlimited. */
  frameRate: number;
  frameBurst: number;
  /** Consecutive rate-limited messages after which the connection is closed with 1008. */
  floodCloseAfter: number;
}

/** Which bucket a frame draws from: every frame, then chats or the requests that cost a lookup. */
export type Gate = "frame" | "chat" | "control";

/** Requests that cost a lookup or a broadcast, limited together by the control bucket. */
const CONTROL_TYPES = new Set([
  "nick",
  "join",
  "history",
  "who",
  "part",
  "dm",
  "sync",
  "read",
  "kick",
  "ban",
]);
/** v2's changes count as chat for the bucket. */
const CHAT_TYPES = new Set(["chat", "edit", "delete", "react", "topic"]);

/** The gate a decoded message passes after the frame gate, if any. */
export function gateOf(type: string): Gate | undefined {
  if (CHAT_TYPES.has(type)) return "chat";
  return CONTROL_TYPES.has(type) ? "control" : undefined;
}

/** One connection's buckets and its count of refusals in a row. */
export class ConnectionLimits {
  private strikes = 0;
  private readonly buckets: Record<Gate, TokenBucket>;

  constructor(
    private readonly limits: RateLimits,
    now: number,
  ) {
    this.buckets = {
      frame: new TokenBucket(limits.frameRate, limits.frameBurst, now),
      chat: new TokenBucket(limits.rateLimit, limits.rateBurst, now),
      control: new TokenBucket(limits.controlRate, limits.controlBurst, now),
    };
  }

  /** Takes a token at `gate`: "refused" counts a strike, "flooding" once the strikes reach the limit. */
  take(gate: Gate, now: number): "ok" | "refused" | "flooding" {
    if (this.buckets[gate].take(now)) return "ok";
    this.strikes++;
    return this.strikes >= this.limits.floodCloseAfter ? "flooding" : "refused";
  }

  /** A frame got through every gate it met: the count of refusals in a row starts again. */
  passed(): void {
    this.strikes = 0;
  }
}
