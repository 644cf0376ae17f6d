import type { ImageInfo } from '../../schema/generated/qapi-types.ts';
import { QmpError } from '../../qmp/errors.ts';
import type { BlockChildIo } from '../node.ts';
import type { BlockDriver, SnapshotSource } from './driver.ts';

/** Reads the point-in-time view a copy-before-write filter keeps; it cannot be written. */
export class SnapshotAccessDriver implements BlockDriver {
  readonly format = 'snapshot-access';
  private readonly snapshot: SnapshotSource;

  constructor(private readonly child: BlockChildIo) {
    if (!child.snapshot) throw new QmpError("Child node does not support snapshot-access");
    this.snapshot = child.snapshot;
  }

  size(): number {
    return this.child.size();
  }

  read(offset: number, length: number): Buffer {
    return this.snapshot.snapshotRead(offset, length);
  }

  write(): void {
    throw new QmpError('snapshot-access is read-only');
  }

  writeZeroes(): void {
    throw new QmpError('snapshot-access is read-only');
  }

  discard(offset: number, length: number): void {
    this.snapshot.snapshotDiscard(offset, length);
  }

  flush(): void {}
  close(): void {}

  imageInfo(): ImageInfo {
    const childInfo = this.child.imageInfo();
    return { 'virtual-size': this.child.size(), filename: childInfo.filename, format: this.format };
  }
}
