import type { DirtyBitmap } from '../bitmap/dirty-bitmap.ts';
import type { BitmapData } from '../bitmap/bitmap-data.ts';
import type { ByteStore } from './byte-store.ts';
import type { BlkdebugEvent, BlockdevDriver, ImageInfo } from '../../schema/generated/qapi-types.ts';

/** A bitmap as found in an image when it is opened. */
export interface LoadedBitmap {
  name: string;
  granularity: number;
  /** Marked in-use on disk: it was not stored properly and is inconsistent. */
  inUse: boolean;
  /** Recording when loaded (qcow2's "auto" flag). */
  enabled: boolean;
  loadInto(data: BitmapData): void;
}

export interface BitmapToStore {
  name: string;
  granularity: number;
  enabled: boolean;
  data: BitmapData;
}

/** Drivers whose images carry persistent bitmaps implement this. */
export interface PersistentBitmapStore {
  loadBitmaps(): LoadedBitmap[];
  /** Called once after loading, on writable images: marks stored bitmaps in use on disk. */
  markInUse(): void;
  /** Returns QEMU's error text when the image cannot hold such a new bitmap. */
  checkNewBitmap(name: string, granularity: number): string | null;
  storeBitmaps(bitmaps: BitmapToStore[]): void;
  removeBitmap(name: string): void;
}

/** What a run of bytes starting at an offset holds, as QEMU's block status reports it. */
export interface BlockStatus {
  /** Bytes from the offset asked about that share this status (at least 1). */
  length: number;
  /** Stored data rather than a hole. */
  data: boolean;
  /** Reads as zeroes, and says so (QEMU's BDRV_BLOCK_ZERO): what NBD clients are told. */
  zero: boolean;
  /**
   * Reads give zeroes here although `zero` does not say so, as QEMU does not
   * (null-co without read-zeroes): a copy may still write zeroes instead.
   */
  zeroUnreported?: boolean;
  /** Allocated in this node rather than left to what lies below (QEMU's is_allocated). */
  allocated: boolean;
}

/** What a format driver reads its unallocated clusters from: the next node down its backing chain. */
export interface BackingReader {
  size(): number;
  read(offset: number, length: number): Buffer;
  readInto(offset: number, into: Buffer): Promise<void>;
  blockStatus(offset: number, length: number): BlockStatus;
}

/** A format driver whose image names a backing file and reads through it (qcow2). */
export interface BackingChainDriver {
  /** The backing file the image header names, '' for none; the format its extension names. */
  readonly backingFile: string;
  readonly backingFormat: string | undefined;
  /** The header's name resolved against the directory of the image's file. */
  fullBackingFilename(): string;
  setBacking(backing: BackingReader | undefined): void;
}

/** The guest-visible data path and the facts query commands report. */
/** How a zero write may be done (QEMU's BDRV_REQ_MAY_UNMAP and BDRV_REQ_NO_FALLBACK). */
export interface ZeroWriteFlags {
  /** The range may lose its storage, as long as it reads as zeroes. */
  mayUnmap?: boolean;
  /** Fail with ENOTSUP rather than write zeroes: the caller only wants a zeroing that costs nothing. */
  noFallback?: boolean;
}

export interface BlockDriver {
  readonly format: BlockdevDriver;
  size(): number;
  /** Cluster size where the format has one (0: the driver reports none, but reports); it sets the default bitmap granularity. */
  readonly clusterSize?: number;
  /** QEMU's is_filter: the node shows its child's data unchanged; queries nest the child's image as its backing image. */
  readonly isFilter?: true;
  /** Asked for its cluster size, QEMU asks the node's first child (raw, and the filter drivers). */
  readonly reportsChildClusterSize?: true;
  read(offset: number, length: number): Buffer;
  /**
   * `read` into the caller's buffer with the host reads off the event loop; drivers without it read synchronously.
   * It never throws: every failure rejects. (A read passes through one of these per layer of a chain, so
   * they are plain functions returning promises: an async function returning another promise costs two more turns.)
   */
  readInto?(offset: number, into: Buffer): Promise<void>;
  write(offset: number, data: Buffer): void;
  writeZeroes(offset: number, length: number, flags?: ZeroWriteFlags): void;
  /**
   * False for drivers that cannot promise a zero write without writing zeroes (QEMU's
   * supported_zero_flags without BDRV_REQ_NO_FALLBACK): a `noFallback` request fails with
   * ENOTSUP. Drivers that pass requests to a child leave it to the child.
   */
  zeroesWithoutFallback?(): boolean;
  /** Formats that store compressed clusters (qcow2): whole clusters, compressed where that saves room. */
  writeCompressed?(offset: number, data: Buffer): void;
  discard(offset: number, length: number): void;
  flush(): void;
  /** True once the node lost its driver (qcow2 after a fatal corruption): QEMU's "ejected", ENOMEDIUM. */
  noMedium?(): boolean;
  /**
   * Status of the run from `offset` on, within `length` bytes; drivers without
   * one hold data everywhere. The one block-status interface: NBD's meta
   * contexts and sparse reads, backup's sync=top and zero detection all ask it
   * (see block/block-status.ts).
   */
  blockStatus?(offset: number, length: number): BlockStatus;
  /** Driver-specific ImageInfo members (filename, actual-size, format-specific...). */
  imageInfo(): ImageInfo;
  /** A protocol driver exposes its bytes to the format driver above it. */
  readonly byteStore?: ByteStore;
  /** bdrv_debug_event: a parent's data path names what it is about to do to this node (only blkdebug listens). */
  debugEvent?(event: BlkdebugEvent): void;
  readonly bitmapStore?: PersistentBitmapStore;
  /** Drivers of host files: claimed by each parent that reads or writes through the node. */
  readonly hostLock?: HostLock;
  readonly backingChain?: BackingChainDriver;
  /** Unnamed bitmaps the driver keeps, listed on its own node and on its `file` child. */
  internalBitmaps?(): InternalBitmaps;
  /** copy-before-write: the point-in-time view snapshot-access reads. */
  snapshotSource?(): SnapshotSource;
  close(): void;
  /** blockdev-reopen switched the node between read-only and read-write (permissions already checked). */
  reopen?(readOnly: boolean): void;
  /**
   * block_resize: the new guest size; a driver without it cannot be resized. A driver
   * that stores bitmaps calls `checkStoredBitmaps` with their names, in its order, once
   * its own checks passed: each must be usable, as it is resized with the image.
   */
  resize?(size: number, checkStoredBitmaps: (names: string[]) => void): void;
}

export interface InternalBitmaps {
  own: DirtyBitmap[];
  file: DirtyBitmap[];
}

/** The snapshot a copy-before-write filter keeps: the source as it was when the filter was added. */
export interface SnapshotSource {
  snapshotRead(offset: number, length: number): Buffer;
  snapshotDiscard(offset: number, length: number): void;
}

export type HostLockMode = 'read' | 'write';

/** QEMU's image locking, within this daemon: claim throws QEMU's lock error on a conflict. */
export interface HostLock {
  claim(mode: HostLockMode): void;
  release(mode: HostLockMode): void;
}
