import type { ImageInfo } from '../../schema/generated/qapi-types.ts';
import type { BlockChildIo, BlockNode } from '../node.ts';
import type { ThrottleGroup } from '../throttle/group.ts';
import { now } from '../throttle/completion.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BlockDriver, BlockStatus, ZeroWriteFlags } from './driver.ts';

/**
 * The `throttle` filter: every request to its `file` child is accounted in its
 * throttle group and may go only when the group's buckets allow. Synchronous
 * requests are done at once and their due time is recorded for the caller to
 * wait out (throttle/completion.ts); asynchronous reads wait before reading.
 * Writes, zero writes and discards count as writes, as in QEMU.
 */
export class ThrottleDriver implements BlockDriver {
  readonly format = 'throttle';
  readonly isFilter = true;
  readonly reportsChildClusterSize = true;

  constructor(
    private readonly child: BlockChildIo,
    private group: ThrottleGroup,
    /** Its `json:` filename, which names the group. */
    private readonly filenameFor: (groupId: string) => string,
  ) {
    group.users++;
  }

  /** blockdev-reopen named another group: requests count there from now on. */
  switchGroup(group: ThrottleGroup): void {
    this.group.users--;
    group.users++;
    this.group = group;
  }

  size(): number {
    return this.child.size();
  }

  read(offset: number, length: number): Buffer {
    this.group.admit('read', length);
    return this.child.read(offset, length);
  }

  readInto(offset: number, into: Buffer): Promise<void> {
    const wait = this.group.admit('read', into.length) - now();
    if (wait > 0) return sleep(wait).then(() => this.child.readInto(offset, into));
    return this.child.readInto(offset, into);
  }

  write(offset: number, data: Buffer): void {
    this.group.admit('write', data.length);
    this.child.write(offset, data);
  }

  writeZeroes(offset: number, length: number, flags: ZeroWriteFlags = {}): void {
    this.group.admit('write', length);
    this.child.writeZeroes(offset, length, flags);
  }

  discard(offset: number, length: number): void {
    this.group.admit('write', length);
    this.child.discard(offset, length);
  }

  flush(): void {
    this.child.flush();
  }

  blockStatus(offset: number, length: number): BlockStatus {
    return this.child.blockStatus(offset, length);
  }

  close(): void {
    this.group.users--;
  }

  imageInfo(): ImageInfo {
    const childInfo = this.child.imageInfo();
    const info: ImageInfo = { 'virtual-size': this.child.size(), filename: this.filenameFor(this.group.id), format: this.format };
    if (childInfo['actual-size'] !== undefined) info['actual-size'] = childInfo['actual-size'];
    return info;
  }
}

/** Whether I/O to the node passes a throttle node on its way down (then each request counts on its own). */
export function throttledBelow(node: BlockNode): boolean {
  return node.driver.format === 'throttle' || node.children.some(throttledBelow);
}
