import { BUCKETS, BUCKET_RULES, type BucketName, type ThrottleConfig } from './config.ts';

export type Direction = 'read' | 'write';

interface BucketLevel {
  /** What has gone through and not yet leaked out, at the sustained rate. */
  level: number;
  /** The same at the burst rate, kept only for bursts longer than a second. */
  burstLevel: number;
}

/**
 * The leaky buckets of one throttle group (the rules of QEMU's util/throttle.c):
 * each request adds its bytes or operations to the buckets of its direction,
 * buckets drain at their `avg` rate, and a request waits while a bucket holds
 * more than it may (avg/10 without a burst limit, max x burst length with one;
 * a long burst is also held to max/10 in its own bucket). Requests of one
 * direction leave in the order they came. Times are milliseconds from an
 * injected clock, so the arithmetic is testable without waiting.
 */
export class ThrottleBuckets {
  private readonly levels = Object.fromEntries(BUCKETS.map((name) => [name, { level: 0, burstLevel: 0 }])) as Record<BucketName, BucketLevel>;
  private previousLeak: number;
  private readonly queueFreeAt: Record<Direction, number> = { read: 0, write: 0 };

  constructor(
    private readonly config: ThrottleConfig,
    now: number,
  ) {
    this.previousLeak = now;
  }

  /** Accounts one request arriving at `now` and returns when it may go (at `now` or later). */
  admit(direction: Direction, bytes: number, now: number): number {
    const start = Math.max(now, this.queueFreeAt[direction]);
    this.leak(start);
    const dispatchAt = start + this.waitFor(direction);
    this.leak(dispatchAt);
    this.account(direction, bytes);
    this.queueFreeAt[direction] = dispatchAt;
    return dispatchAt;
  }

  private applies(bucket: BucketName, direction: Direction): boolean {
    const rule = BUCKET_RULES[bucket].direction;
    return rule === 'any' || rule === direction;
  }

  private leak(now: number): void {
    const elapsed = now - this.previousLeak;
    if (elapsed <= 0) return;
    this.previousLeak = now;
    for (const bucket of BUCKETS) {
      const { avg, max, burstLength } = this.config.buckets[bucket];
      const state = this.levels[bucket];
      state.level = Math.max(state.level - (avg * elapsed) / 1000, 0);
      if (burstLength > 1) state.burstLevel = Math.max(state.burstLevel - (max * elapsed) / 1000, 0);
    }
  }

  /** Milliseconds until every bucket of the direction is below its size. */
  private waitFor(direction: Direction): number {
    let wait = 0;
    for (const bucket of BUCKETS) {
      if (this.applies(bucket, direction)) wait = Math.max(wait, this.bucketWait(bucket));
    }
    return wait;
  }

  private bucketWait(bucket: BucketName): number {
    const { avg, max, burstLength } = this.config.buckets[bucket];
    const { level, burstLevel } = this.levels[bucket];
    if (!avg) return 0;
    // Without a burst limit a tenth of a second's worth may pass at once, so short bursts are not held back.
    const size = max ? max * burstLength : avg / 10;
    if (level > size) return ((level - size) / avg) * 1000;
    if (burstLength > 1 && burstLevel > max / 10) return ((burstLevel - max / 10) / max) * 1000;
    return 0;
  }

  private account(direction: Direction, bytes: number): void {
    const operations = this.config.opSize && bytes > this.config.opSize ? bytes / this.config.opSize : 1;
    for (const bucket of BUCKETS) {
      if (!this.applies(bucket, direction)) continue;
      const amount = BUCKET_RULES[bucket].unit === 'bytes' ? bytes : operations;
      const state = this.levels[bucket];
      state.level += amount;
      if (this.config.buckets[bucket].burstLength > 1) state.burstLevel += amount;
    }
  }
}
