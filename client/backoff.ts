/** Reconnect delays: exponential growth with jitter, so clients dropped together do not return together. */
export interface BackoffOptions {
  /** Delay of the first retry before jitter. */
  baseMs: number;
  /** Ceiling of the delay before jitter. */
  maxMs: number;
  factor: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 15_000, factor: 2 };

/**
 * Delay before retry number `attempt` (0 for the first): a random point in the upper half of the
 * capped exponential step ("equal jitter"), so a retry is spread out yet never immediate.
 */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number): number {
  const step = Math.min(options.maxMs, options.baseMs * options.factor ** Math.max(0, attempt));
  return Math.round(step / 2 + (random() * step) / 2);
}
