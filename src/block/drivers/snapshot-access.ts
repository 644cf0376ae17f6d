import type { ImageInfo } from '../../schema/generated/qapi-types.ts';
import { BlockIoError } from '../io-error.ts';
import { ENOTSUP } from '../../errno.ts';
import type { BlockChildIo } from '../node.ts';
import type { BlockDriver, SnapshotSource } from './driver.ts';

/**
 * Reads the point-in-time view a copy-before-write filter keeps; it cannot be written. As in
 * QEMU, it opens over any node, and a child without such a view fails its requests with ENOTSUP
 * (a discard, whose ENOTSUP the block layer ignores, does nothing).
 */
export class SnapshotAccessDriver implements BlockDriver {
  readonly format = 'snapshot-access';
  private readonly snapshot: SnapshotSource | undefined;

  constructor(private readonly child: BlockChildIo) {
    this.snapshot = child.snapshot;
  }

  size(): number {
    return this.child.size();
  }

  read(offset: number, length: number): Buffer {
    if (!this.snapshot) throw new BlockIoError(ENOTSUP);
    return this.snapshot.snapshotRead(offset, length);
  }

  write(): void {
    throw new BlockIoError(ENOTSUP);
  }

  writeZeroes(): void {
    throw new BlockIoError(ENOTSUP);
  }

  discard(offset: number, length: number): void {
    this.snapshot?.snapshotDiscard(offset, length);
  }

  flush(): void {}
  close(): void {}

  imageInfo(): ImageInfo {
    const childInfo = this.child.imageInfo();
    const info: ImageInfo = { 'virtual-size': this.child.size(), filename: childInfo.filename, format: this.format };
    if (childInfo['actual-size'] !== undefined) info['actual-size'] = childInfo['actual-size'];
    return info;
  }
}
