import type { BlockDriver, BlockStatus } from './driver.ts';
import { integer, roundUpToSector } from './option-rules.ts';
import type { BlockdevOptionsNull, ImageInfo } from '../../schema/generated/qapi-types.ts';

const DEFAULT_SIZE = 1n << 30n;

/** Reads zeroes, swallows writes: the cheapest node to hang bitmaps on (null-co and null-aio). */
export class NullDriver implements BlockDriver {
  /** Whole sectors, as QEMU counts a node's length; up to 2^63 - 2^30, so kept exact. */
  private readonly length: bigint;
  private readonly readZeroes: boolean;

  constructor(
    readonly format: 'null-co' | 'null-aio',
    options: BlockdevOptionsNull,
    private readonly filename: string,
  ) {
    this.length = roundUpToSector(integer(options.size) ?? DEFAULT_SIZE);
    this.readZeroes = options['read-zeroes'] === true;
  }

  size(): number {
    return Number(this.length);
  }

  read(_offset: number, length: number): Buffer {
    return Buffer.alloc(length);
  }

  /**
   * Nothing is stored: a hole everywhere; with read-zeroes=on known to read as
   * zeroes, and so allocated, as QEMU reports it. qblockd's reads give zeroes
   * either way.
   */
  blockStatus(_offset: number, length: number): BlockStatus {
    return { length, data: false, zero: this.readZeroes, allocated: this.readZeroes, zeroUnreported: !this.readZeroes };
  }

  write(): void {}
  writeZeroes(): void {}

  /** QEMU's null-co takes no zero-write flags. */
  zeroesWithoutFallback(): boolean {
    return false;
  }
  discard(): void {}
  flush(): void {}
  close(): void {}

  imageInfo(): ImageInfo {
    const virtualSize = this.length <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(this.length) : this.length;
    return { 'virtual-size': virtualSize, filename: this.filename, format: this.format, 'actual-size': 0 };
  }
}
