import { ThrottleBuckets, type Direction } from './buckets.ts';
import { finishesAt, now } from './completion.ts';
import type { ThrottleConfig } from './config.ts';

/** A throttle-group object: limits shared by every throttle node that names it. */
export class ThrottleGroup {
  private readonly buckets: ThrottleBuckets;
  /** Throttle nodes using the group: while any does, object-del refuses. */
  users = 0;

  constructor(
    readonly id: string,
    readonly config: ThrottleConfig,
  ) {
    this.buckets = new ThrottleBuckets(config, now());
  }

  /** Accounts a request made now and records, for the caller's scope, when QEMU would let it go. */
  admit(direction: Direction, bytes: number): number {
    const at = this.buckets.admit(direction, bytes, now());
    finishesAt(at);
    return at;
  }
}
