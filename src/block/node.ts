import { QmpError } from '../qmp/errors.ts';
import { checkBitmapPermission } from './bitmap/permissions.ts';
import type { DirtyBitmap } from './bitmap/dirty-bitmap.ts';
import type { ByteStore } from './drivers/byte-store.ts';
import { ChildByteStore } from './drivers/child-byte-store.ts';
import type { BlockDriver, BlockStatus, HostLock, SnapshotSource, ZeroWriteFlags } from './drivers/driver.ts';
import type { BlkdebugEvent, BlockdevDetectZeroesOptions, ImageInfo } from '../schema/generated/qapi-types.ts';
import { BlockIoError } from './io-error.ts';
import { ENOTSUP } from '../errno.ts';

/** The data path a parent node sees of its child: the child's bitmaps record what the parent writes. */
export interface BlockChildIo {
  size(): number;
  read(offset: number, length: number): Buffer;
  readInto(offset: number, into: Buffer): Promise<void>;
  write(offset: number, data: Buffer): void;
  writeZeroes(offset: number, length: number, flags?: ZeroWriteFlags): void;
  /** Set when the child's format can store compressed clusters. */
  writeCompressed?(offset: number, data: Buffer): void;
  discard(offset: number, length: number): void;
  flush(): void;
  resize(size: number): void;
  blockStatus(offset: number, length: number): BlockStatus;
  imageInfo(): ImageInfo;
  readonly readOnly: boolean;
  /** BLKDBG_EVENT on this child: the parent is about to read or write it in a named way. */
  debugEvent(event: BlkdebugEvent): void;
  readonly byteStore: ByteStore;
  /** Set when the child is a copy-before-write filter. */
  readonly snapshot?: SnapshotSource;
}

export interface NodeSettings {
  direct: boolean;
  noFlush: boolean;
  detectZeroes: BlockdevDetectZeroesOptions;
}

/** QEMU's block layer counts a node's length in 512-byte sectors. */
const SECTOR = 512;

const DEFAULT_NODE_SETTINGS: NodeSettings = { direct: false, noFlush: false, detectZeroes: 'off' };

/** A node of the block graph: a driver instance, its children and its dirty bitmaps. */
export class BlockNode {
  /** Newest first, the order QEMU lists them in. */
  readonly bitmaps: DirtyBitmap[] = [];
  /** Who keeps this node alive besides the monitor: parents, devices, exports. */
  readonly users = new Set<string>();
  /** The node below in the backing chain (qcow2's `backing` child). */
  backing: BlockNode | undefined;
  /** The links the node's driver reads and writes its children through (`file`, copy-before-write's `target`...). */
  readonly links: ChildLink[] = [];

  constructor(
    readonly nodeName: string,
    readonly driver: BlockDriver,
    readonly children: BlockNode[],
    /** Changes when a snapshot makes the node a backing node (QEMU reopens it read-only). */
    public readOnly: boolean,
    /** Added by the user (blockdev-add / -blockdev) rather than created implicitly. */
    readonly monitorOwned: boolean,
    /** The node's cache and detect-zeroes options, as query-named-block-nodes reports them; blockdev-reopen changes them. */
    public settings: NodeSettings = DEFAULT_NODE_SETTINGS,
  ) {}

  size(): number {
    return this.driver.size();
  }

  findBitmap(name: string): DirtyBitmap | undefined {
    return this.bitmaps.find((bitmap) => !bitmap.anonymous && bitmap.name === name);
  }

  addBitmap(bitmap: DirtyBitmap): void {
    this.bitmaps.unshift(bitmap);
  }

  dropBitmap(bitmap: DirtyBitmap): void {
    const index = this.bitmaps.indexOf(bitmap);
    if (index >= 0) this.bitmaps.splice(index, 1);
  }

  /**
   * Marks every recording bitmap over [offset, offset+length), as a completed guest write does.
   * A write past the end (a format growing its image file) first grows every bitmap to the
   * new end in whole sectors, as QEMU's bdrv_co_write_req_finish does.
   */
  markDirty(offset: number, length: number): void {
    const end = offset + length;
    for (const bitmap of this.bitmaps) {
      if (end > bitmap.data.diskSize) bitmap.data.resize(Math.ceil(end / SECTOR) * SECTOR);
      if (bitmap.marksWrites) bitmap.data.markRange(offset, length);
    }
  }

  read(offset: number, length: number): Buffer {
    return this.driver.read(offset, length);
  }

  /** `read` into `into` (reused buffers cost no fresh pages); a failure, in the driver's lookups or its host reads, rejects. */
  readInto(offset: number, into: Buffer): Promise<void> {
    if (this.driver.readInto) return this.driver.readInto(offset, into);
    try {
      this.driver.read(offset, into.length).copy(into);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  write(offset: number, data: Buffer): void {
    this.assertWritable();
    this.markingWrite(offset, data.length, () => this.driver.write(offset, data));
  }

  writeZeroes(offset: number, length: number, flags: ZeroWriteFlags = {}): void {
    this.assertWritable();
    this.markingWrite(offset, length, () => {
      if (flags.noFallback && this.driver.zeroesWithoutFallback?.() === false) throw new BlockIoError(ENOTSUP);
      this.driver.writeZeroes(offset, length, flags);
    });
  }

  /** A driver that cannot compress fails the write, as QEMU's block layer does. */
  writeCompressed(offset: number, data: Buffer): void {
    this.assertWritable();
    this.markingWrite(offset, data.length, () => {
      if (!this.driver.writeCompressed) throw new BlockIoError(ENOTSUP);
      this.driver.writeCompressed(offset, data);
    });
  }

  /**
   * Runs a write and marks the range dirty, also when the driver fails it: QEMU marks a
   * write's range once the request has reached the driver, whatever the driver answers
   * (the data there may have changed in part).
   */
  markingWrite(offset: number, length: number, write: () => void): void {
    try {
      write();
    } catch (error) {
      if (error instanceof BlockIoError) this.markDirty(offset, length);
      throw error;
    }
    this.markDirty(offset, length);
  }

  /** Discard is ignored unless the node was opened with discard=unmap, as in QEMU; nothing is marked. */
  discard(offset: number, length: number): void {
    this.assertWritable();
    void offset;
    void length;
  }

  flush(): void {
    this.driver.flush();
  }

  /**
   * bdrv_co_truncate: the driver's new size (a format passes it down to its child as its
   * own resize), then every bitmap follows: new chunks clean, chunks past the end dropped.
   */
  resize(size: number): void {
    if (this.readOnly) throw new QmpError('Image is read-only');
    if (!this.driver.resize) throw new QmpError('Image format driver does not support resize');
    this.driver.resize(size, (names) => {
      for (const name of names) {
        const bitmap = this.findBitmap(name);
        if (bitmap) checkBitmapPermission(bitmap, 'resize');
      }
    });
    this.bitmapsFollowSize();
  }

  /** The node's size changed (its own resize, or a format above cutting or extending its file): every bitmap follows it. */
  bitmapsFollowSize(): void {
    for (const bitmap of this.bitmaps) bitmap.data.resize(this.size());
  }

  blockStatus(offset: number, length: number): BlockStatus {
    return this.driver.blockStatus?.(offset, length) ?? { length, data: true, zero: false, allocated: true };
  }

  /**
   * Where in the backing chain the run of bytes from `offset` is allocated:
   * 1 in this node, 2 in its backing, ..., 0 nowhere (QEMU's allocation depth).
   */
  allocationDepth(offset: number, length: number): { length: number; depth: number } {
    let run = length;
    let depth = 1;
    for (let layer: BlockNode | undefined = this; layer; layer = layer.backing, depth++) {
      const status = layer.blockStatus(offset, run);
      run = status.length;
      if (status.allocated) return { length: run, depth };
    }
    return { length: run, depth: 0 };
  }

  /** The cluster size QEMU's bdrv_get_info reports of the node; undefined where it gets ENOTSUP. */
  reportedClusterSize(): number | undefined {
    if (this.driver.clusterSize !== undefined) return this.driver.clusterSize;
    return this.driver.reportsChildClusterSize ? this.children[0]?.reportedClusterSize() : undefined;
  }

  /** The image lock a claim on this node reaches: its file's own, through nodes that pass their users' needs down (raw, filters). */
  hostLock(): HostLock | undefined {
    for (let node: BlockNode | undefined = this; node; node = node.children[0]) if (node.driver.hostLock) return node.driver.hostLock;
    return undefined;
  }

  /** A parent's link to this node: reads and writes go through the node, so its bitmaps see them. */
  asChild(): ChildLink {
    return new ChildLink(this);
  }

  private assertWritable(): void {
    if (this.readOnly) throw new QmpError('Block node is read-only');
  }
}

/**
 * A parent's edge to a child node (QEMU's BdrvChild). The driver above keeps
 * its link for good; a snapshot retargets the link to the overlay (QEMU's
 * bdrv_replace_node), and the driver reads and writes the overlay from then on.
 */
export class ChildLink implements BlockChildIo {
  constructor(public node: BlockNode) {}

  size(): number {
    return this.node.size();
  }

  read(offset: number, length: number): Buffer {
    return this.node.read(offset, length);
  }

  readInto(offset: number, into: Buffer): Promise<void> {
    return this.node.readInto(offset, into);
  }

  write(offset: number, data: Buffer): void {
    this.node.write(offset, data);
  }

  writeZeroes(offset: number, length: number, flags: ZeroWriteFlags = {}): void {
    this.node.writeZeroes(offset, length, flags);
  }

  get writeCompressed(): ((offset: number, data: Buffer) => void) | undefined {
    const node = this.node;
    return node.driver.writeCompressed && ((offset, data) => node.writeCompressed(offset, data));
  }

  discard(offset: number, length: number): void {
    this.node.discard(offset, length);
  }

  flush(): void {
    this.node.flush();
  }

  resize(size: number): void {
    this.node.resize(size);
  }

  blockStatus(offset: number, length: number): BlockStatus {
    return this.node.blockStatus(offset, length);
  }

  imageInfo(): ImageInfo {
    return this.node.driver.imageInfo();
  }

  get readOnly(): boolean {
    return this.node.readOnly;
  }

  debugEvent(event: BlkdebugEvent): void {
    this.node.driver.debugEvent?.(event);
  }

  get snapshot(): SnapshotSource | undefined {
    return this.node.driver.snapshotSource?.();
  }

  /** The child's bytes, for a format driver above. */
  readonly byteStore: ByteStore = new LinkByteStore(this);
}

/**
 * A format driver's storage through a link, whichever node the link is on: a
 * host file's store directly (what the format writes marks the file node's
 * bitmaps), any other node through its data path.
 */
class LinkByteStore implements ByteStore {
  private readonly throughNode: ChildByteStore;

  constructor(private readonly link: ChildLink) {
    this.throughNode = new ChildByteStore(link);
  }

  private get target(): ByteStore {
    return this.link.node.driver.byteStore ?? this.throughNode;
  }

  get readOnly(): boolean {
    return this.target.readOnly;
  }

  size(): number {
    return this.target.size();
  }

  pread(buffer: Buffer, offset: number): number {
    return this.target.pread(buffer, offset);
  }

  preadAsync(buffer: Buffer, offset: number): Promise<number> {
    return this.target.preadAsync(buffer, offset);
  }

  pwrite(buffer: Buffer, offset: number): void {
    const node = this.link.node;
    const fileStore = node.driver.byteStore;
    if (!fileStore) return this.throughNode.pwrite(buffer, offset);
    node.markingWrite(offset, buffer.length, () => fileStore.pwrite(buffer, offset));
  }

  truncate(length: number): void {
    const node = this.link.node;
    const fileStore = node.driver.byteStore;
    if (!fileStore) return this.throughNode.truncate(length);
    fileStore.truncate(length);
    node.bitmapsFollowSize();
  }

  flush(): void {
    this.target.flush();
  }

  close(): void {
    this.target.close();
  }

  debugEvent(event: BlkdebugEvent): void {
    this.link.debugEvent(event);
  }
}
