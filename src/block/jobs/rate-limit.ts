const SLICE_NS = 100_000_000;

/**
 * QEMU's rate limit: a quota of bytes per 100 ms slice. Going over the quota
 * stretches the slice in proportion and the caller sleeps until it ends, so
 * even `speed: 1` lets the first chunk through and then holds the job.
 */
export class RateLimit {
  private sliceQuota = 0;
  private sliceStart = 0;
  private sliceEnd = 0;
  private dispatched = 0;

  setSpeed(bytesPerSecond: number): void {
    this.sliceQuota = bytesPerSecond === 0 ? 0 : Math.max((bytesPerSecond * SLICE_NS) / 1e9, 1);
  }

  /** Accounts `bytes` and returns how long (ns) to wait before the next request. */
  delay(bytes: number, now = Number(process.hrtime.bigint())): number {
    if (!this.sliceQuota) return 0;
    if (this.sliceEnd < now) {
      this.sliceStart = now;
      this.sliceEnd = now + SLICE_NS;
      this.dispatched = 0;
    }
    this.dispatched += bytes;
    if (this.dispatched < this.sliceQuota) return 0;
    this.sliceEnd = this.sliceStart + Math.floor((this.dispatched / this.sliceQuota) * SLICE_NS);
    return this.sliceEnd - now;
  }
}
