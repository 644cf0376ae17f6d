import type { ImageInfo } from '../../schema/generated/qapi-types.ts';
import type { BlockChildIo } from '../node.ts';
import type { BlockDriver } from './driver.ts';

/** Called before a guest write reaches the source, so the old data can be copied first. */
export type BeforeWrite = (offset: number, length: number) => void;

/**
 * The backup filter: reads pass through; writes first let the job copy what
 * they would overwrite. It takes the source's write permission for itself,
 * so only writes through the filter (or a device above it) reach the source.
 */
export class CopyBeforeWriteDriver implements BlockDriver {
  readonly format = 'copy-before-write';
  readonly unsharesChildWrite = true;

  constructor(
    private readonly child: BlockChildIo,
    private readonly beforeWrite: BeforeWrite,
  ) {}

  size(): number {
    return this.child.size();
  }

  read(offset: number, length: number): Buffer {
    return this.child.read(offset, length);
  }

  write(offset: number, data: Buffer): void {
    this.beforeWrite(offset, data.length);
    this.child.write(offset, data);
  }

  writeZeroes(offset: number, length: number): void {
    this.beforeWrite(offset, length);
    this.child.writeZeroes(offset, length);
  }

  discard(offset: number, length: number): void {
    this.beforeWrite(offset, length);
    this.child.discard(offset, length);
  }

  flush(): void {
    this.child.flush();
  }

  close(): void {}

  /** A filter reports its child's image as its backing image. */
  imageInfo(): ImageInfo {
    const childInfo = this.child.imageInfo();
    const info: ImageInfo = {
      'virtual-size': this.child.size(),
      filename: childInfo.filename,
      format: this.format,
      'backing-image': childInfo,
    };
    if (childInfo['actual-size'] !== undefined) info['actual-size'] = childInfo['actual-size'];
    return info;
  }
}
