import type { BlkdebugEvent } from '../../schema/generated/qapi-types.ts';
import type { BlockChildIo } from '../node.ts';
import type { ByteStore } from './byte-store.ts';

/**
 * The bytes of a child that is not a host file (a blkdebug or throttle filter,
 * a raw format), for a format driver above it: QEMU's formats read and write
 * through any child. Reads past the child's end are short, as a file's are;
 * writes past it grow what lies below.
 */
export class ChildByteStore implements ByteStore {
  constructor(private readonly child: BlockChildIo) {}

  get readOnly(): boolean {
    return this.child.readOnly;
  }

  size(): number {
    return this.child.size();
  }

  pread(buffer: Buffer, offset: number): number {
    const length = this.available(offset, buffer.length);
    if (length > 0) this.child.read(offset, length).copy(buffer);
    return length;
  }

  preadAsync(buffer: Buffer, offset: number): Promise<number> {
    const length = this.available(offset, buffer.length);
    if (length <= 0) return Promise.resolve(0);
    return this.child.readInto(offset, buffer.subarray(0, length)).then(() => length);
  }

  pwrite(buffer: Buffer, offset: number): void {
    this.child.write(offset, buffer);
  }

  truncate(length: number): void {
    this.child.resize(length);
  }

  flush(): void {
    this.child.flush();
  }

  /** The child is a node of the graph: it is closed with the graph, not by its parent. */
  close(): void {}

  debugEvent(event: BlkdebugEvent): void {
    this.child.debugEvent(event);
  }

  private available(offset: number, length: number): number {
    return Math.max(0, Math.min(length, this.child.size() - offset));
  }
}
