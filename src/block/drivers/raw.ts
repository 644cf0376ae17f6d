import { QmpError } from '../../qmp/errors.ts';
import type { BlockDriver, BlockStatus, ZeroWriteFlags } from './driver.ts';
import type { BlockChildIo } from '../node.ts';
import { integer, roundUpToSector } from './option-rules.ts';
import type { BlockdevOptionsRaw, ImageInfo } from '../../schema/generated/qapi-types.ts';

/** The `raw` format: a pass-through over its protocol child, or over the window `offset`/`size` of it. */
export class RawDriver implements BlockDriver {
  readonly format = 'raw';
  readonly reportsChildClusterSize = true;
  private offset = 0;
  /** Given `size`: a fixed window, which QEMU refuses to resize; else the window runs to the child's end. */
  private fixedLength: number | undefined;

  /** Options already checked by RAW_RULES: the window lies within the child. */
  constructor(
    private readonly child: BlockChildIo,
    options: BlockdevOptionsRaw,
    private readonly filename: () => string,
  ) {
    this.setWindow(options);
  }

  /** The window `offset`/`size` of the child, at open or on blockdev-reopen (checked by RAW_RULES). */
  setWindow(options: Pick<BlockdevOptionsRaw, 'offset' | 'size'>): void {
    this.offset = Number(integer(options.offset) ?? 0n);
    const size = integer(options.size);
    this.fixedLength = size === undefined ? undefined : Number(size);
  }

  resize(size: number): void {
    if (this.fixedLength !== undefined) throw new QmpError('Cannot resize fixed-size raw disks');
    this.child.resize(this.offset + size);
  }

  size(): number {
    return Number(roundUpToSector(BigInt(this.fixedLength ?? this.child.size() - this.offset)));
  }

  read(offset: number, length: number): Buffer {
    this.child.debugEvent('read_aio');
    return this.child.read(this.offset + offset, length);
  }

  readInto(offset: number, into: Buffer): Promise<void> {
    this.child.debugEvent('read_aio');
    return this.child.readInto(this.offset + offset, into);
  }

  write(offset: number, data: Buffer): void {
    this.child.debugEvent('write_aio');
    this.child.write(this.offset + offset, data);
  }

  writeZeroes(offset: number, length: number, flags: ZeroWriteFlags = {}): void {
    this.child.writeZeroes(this.offset + offset, length, flags);
  }

  discard(offset: number, length: number): void {
    this.child.discard(this.offset + offset, length);
  }

  flush(): void {
    this.child.flush();
  }

  blockStatus(offset: number, length: number): BlockStatus {
    return this.child.blockStatus(this.offset + offset, length);
  }

  close(): void {}

  /** The child's figures (QEMU's raw asks its child for them), but no format-specific part: raw has none. */
  imageInfo(): ImageInfo {
    const { 'format-specific': _childFormat, ...child } = this.child.imageInfo();
    return { ...child, 'virtual-size': this.size(), filename: this.filename(), format: 'raw' };
  }
}
