import type { BlockDriver } from './driver.ts';
import type { BlockChildIo } from '../node.ts';
import type { ImageInfo } from '../../schema/generated/qapi-types.ts';

/** The `raw` format: a pass-through over its protocol child. */
export class RawDriver implements BlockDriver {
  readonly format = 'raw';

  constructor(private readonly child: BlockChildIo) {}

  size(): number {
    return this.child.size();
  }

  read(offset: number, length: number): Buffer {
    return this.child.read(offset, length);
  }

  write(offset: number, data: Buffer): void {
    this.child.write(offset, data);
  }

  writeZeroes(offset: number, length: number): void {
    this.child.writeZeroes(offset, length);
  }

  discard(offset: number, length: number): void {
    this.child.discard(offset, length);
  }

  flush(): void {
    this.child.flush();
  }

  close(): void {}

  imageInfo(): ImageInfo {
    return { ...this.child.imageInfo(), format: 'raw' };
  }
}
