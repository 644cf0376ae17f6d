/**
 * Read buffers, taken for a read and given back once its reply has been
 * written. Fresh memory costs a page fault and a zeroed page
 * from the kernel for every 4 KiB, which for bulk reads costs more than
 * copying the data; reused buffers cost neither, nor garbage collection.
 */
export class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private freeBytes = 0;

  /** At most `limit` bytes wait for reuse; what is given back beyond that is left to the collector. */
  constructor(private readonly limit: number) {}

  take(length: number): Buffer {
    const buffer = this.free.get(length)?.pop();
    if (!buffer) return Buffer.allocUnsafeSlow(length);
    this.freeBytes -= length;
    return buffer;
  }

  give(buffer: Buffer): void {
    if (this.freeBytes + buffer.length > this.limit) return;
    const list = this.free.get(buffer.length);
    if (list) list.push(buffer);
    else this.free.set(buffer.length, [buffer]);
    this.freeBytes += buffer.length;
  }

  /** Leaves every free buffer to the collector. */
  clear(): void {
    this.free.clear();
    this.freeBytes = 0;
  }
}
