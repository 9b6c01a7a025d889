/** Medians and a small log-linear latency histogram that worker processes can merge. */

/** Median of the finite values; NaN when there are none. */
export function median(values: readonly number[]): number {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
}

/** Microseconds exact below 1,024; above, 128 buckets per power of two (under 0.8% error). */
const LINEAR = 1024;
const SUB_BITS = 7;
const SUB = 1 << SUB_BITS;
const MAX_POW = 40;
const SIZE = LINEAR + (MAX_POW - 10) * SUB;

function bucketOf(us: number): number {
  const v = us < 0 ? 0 : Math.floor(us);
  if (v < LINEAR) return v;
  const pow = Math.min(MAX_POW - 1, 31 - Math.clz32(Math.min(v, 2 ** 31 - 1)));
  const sub = Math.floor(v / 2 ** (pow - SUB_BITS)) - SUB;
  return Math.min(SIZE - 1, LINEAR + (pow - 10) * SUB + sub);
}

function bucketValue(bucket: number): number {
  if (bucket < LINEAR) return bucket;
  const pow = 10 + Math.floor((bucket - LINEAR) / SUB);
  const sub = (bucket - LINEAR) % SUB;
  const width = 2 ** (pow - SUB_BITS);
  return (SUB + sub) * width + width / 2;
}

export type HistogramData = Array<[bucket: number, count: number]>;

export class Histogram {
  private counts = new Float64Array(SIZE);
  count = 0;
  max = 0;

  record(us: number): void {
    const b = bucketOf(us);
    this.counts[b] = (this.counts[b] as number) + 1;
    this.count++;
    if (us > this.max) this.max = us;
  }

  /** Sparse form for IPC: only non-empty buckets. */
  toData(): HistogramData {
    const out: HistogramData = [];
    for (let i = 0; i < SIZE; i++) if (this.counts[i]) out.push([i, this.counts[i] as number]);
    return out;
  }

  add(data: HistogramData, max = 0): void {
    for (const [b, n] of data) {
      this.counts[b] = (this.counts[b] as number) + n;
      this.count += n;
    }
    if (max > this.max) this.max = max;
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.max = 0;
  }

  /** The value at quantile q (0..1), in microseconds; NaN when empty. */
  quantile(q: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < SIZE; i++) {
      seen += this.counts[i] as number;
      if (seen >= rank) return Math.min(bucketValue(i), this.max);
    }
    return this.max;
  }
}
