import { toQmpJson } from '../../qmp/wire.ts';
import type { BlockDriver } from './driver.ts';
import type { BlockdevOptionsNull, ImageInfo } from '../../schema/generated/qapi-types.ts';

const SECTOR = 512;
const DEFAULT_SIZE = 1 << 30;

/** Reads zeroes, swallows writes: the cheapest node to hang bitmaps on. */
export class NullDriver implements BlockDriver {
  readonly format = 'null-co';
  private readonly length: number;

  constructor(private readonly options: BlockdevOptionsNull) {
    const requested = options.size === undefined ? DEFAULT_SIZE : Number(options.size);
    this.length = Math.ceil(requested / SECTOR) * SECTOR;
  }

  size(): number {
    return this.length;
  }

  read(_offset: number, length: number): Buffer {
    return Buffer.alloc(length);
  }

  write(): void {}
  writeZeroes(): void {}
  discard(): void {}
  flush(): void {}
  close(): void {}

  imageInfo(): ImageInfo {
    const given = Object.keys(this.options).length > 0;
    const filename = given ? `json:${toQmpJson({ driver: 'null-co', ...this.options })}` : 'null-co://';
    return { 'virtual-size': this.length, filename, format: 'null-co', 'actual-size': 0 };
  }
}
