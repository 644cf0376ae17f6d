import { QmpError } from '../qmp/errors.ts';
import { checkBitmapPermission } from './bitmap/permissions.ts';
import type { DirtyBitmap } from './bitmap/dirty-bitmap.ts';
import type { ByteStore } from './drivers/byte-store.ts';
import type { BlockDriver, BlockStatus, SnapshotSource } from './drivers/driver.ts';
import type { BlkdebugEvent, BlockdevDetectZeroesOptions, ImageInfo } from '../schema/generated/qapi-types.ts';

/** The data path a parent node sees of its child: the child's bitmaps record what the parent writes. */
export interface BlockChildIo {
  size(): number;
  read(offset: number, length: number): Buffer;
  readInto(offset: number, into: Buffer): Promise<void>;
  write(offset: number, data: Buffer): void;
  writeZeroes(offset: number, length: number): void;
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
  readonly byteStore?: ByteStore;
  /** Set when the child is a copy-before-write filter. */
  readonly snapshot?: SnapshotSource;
}

export interface NodeSettings {
  direct: boolean;
  noFlush: boolean;
  detectZeroes: BlockdevDetectZeroesOptions;
}

const DEFAULT_NODE_SETTINGS: NodeSettings = { direct: false, noFlush: false, detectZeroes: 'off' };

/** A node of the block graph: a driver instance, its children and its dirty bitmaps. */
export class BlockNode {
  /** Newest first, the order QEMU lists them in. */
  readonly bitmaps: DirtyBitmap[] = [];
  /** Who keeps this node alive besides the monitor: parents, devices, exports. */
  readonly users = new Set<string>();
  /** The node below in the backing chain (qcow2's `backing` child). */
  backing: BlockNode | undefined;

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

  /** Marks every recording bitmap over [offset, offset+length), as a completed guest write does. */
  markDirty(offset: number, length: number): void {
    for (const bitmap of this.bitmaps) {
      if (bitmap.marksWrites) bitmap.data.markRange(offset, length);
    }
  }

  read(offset: number, length: number): Buffer {
    return this.driver.read(offset, length);
  }

  /** `read` into `into` (reused buffers cost no fresh pages); a failure, in the driver's lookups or its host reads, rejects. */
  async readInto(offset: number, into: Buffer): Promise<void> {
    if (this.driver.readInto) return this.driver.readInto(offset, into);
    this.driver.read(offset, into.length).copy(into);
  }

  write(offset: number, data: Buffer): void {
    this.assertWritable();
    this.driver.write(offset, data);
    this.markDirty(offset, data.length);
  }

  writeZeroes(offset: number, length: number): void {
    this.assertWritable();
    this.driver.writeZeroes(offset, length);
    this.markDirty(offset, length);
  }

  writeCompressed(offset: number, data: Buffer): void {
    this.assertWritable();
    this.driver.writeCompressed!(offset, data);
    this.markDirty(offset, data.length);
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

  /** The view a parent gets: reads and writes go through this node, so its bitmaps see them. */
  /** The cluster size QEMU's bdrv_get_info reports of the node; undefined where it gets ENOTSUP. */
  reportedClusterSize(): number | undefined {
    if (this.driver.clusterSize !== undefined) return this.driver.clusterSize;
    return this.driver.reportsChildClusterSize ? this.children[0]?.reportedClusterSize() : undefined;
  }

  asChild(): BlockChildIo {
    const node = this;
    const store = this.driver.byteStore;
    return {
      size: () => node.size(),
      read: (offset, length) => node.read(offset, length),
      readInto: (offset, into) => node.readInto(offset, into),
      write: (offset, data) => node.write(offset, data),
      writeZeroes: (offset, length) => node.writeZeroes(offset, length),
      writeCompressed: node.driver.writeCompressed && ((offset, data) => node.writeCompressed(offset, data)),
      discard: (offset, length) => node.discard(offset, length),
      flush: () => node.flush(),
      resize: (size) => node.resize(size),
      blockStatus: (offset, length) => node.blockStatus(offset, length),
      imageInfo: () => node.driver.imageInfo(),
      get readOnly() {
        return node.readOnly;
      },
      debugEvent: (event) => node.driver.debugEvent?.(event),
      snapshot: node.driver.snapshotSource?.(),
      byteStore: store && {
        get readOnly() {
          return store.readOnly;
        },
        size: () => store.size(),
        pread: (buffer, offset) => store.pread(buffer, offset),
        preadAsync: (buffer, offset) => store.preadAsync(buffer, offset),
        pwrite: (buffer, offset) => {
          store.pwrite(buffer, offset);
          node.markDirty(offset, buffer.length);
        },
        truncate: (length) => store.truncate(length),
        flush: () => store.flush(),
        close: () => store.close(),
      },
    };
  }

  private assertWritable(): void {
    if (this.readOnly) throw new QmpError('Block node is read-only');
  }
}
