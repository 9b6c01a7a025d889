/**
 * The clock every timeout and interval uses: wall time at process start plus the monotonic time
 * since, so a step of the system clock (NTP, an operator) neither expires live peers at once nor
 * keeps dead ones for an hour. Message stamps (`sentAt`) still read the wall clock.
 */
const ORIGIN = performance.timeOrigin;

export function monotonicNow(): number {
  return ORIGIN + performance.now();
}
