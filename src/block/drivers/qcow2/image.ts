import type { BitmapData } from '../../bitmap/bitmap-data.ts';
import { statusRuns } from '../../block-status.ts';
import { lazyZlib } from '../../builtins.ts';
import { BlockIoError } from '../../io-error.ts';
import type { ByteStore } from '../byte-store.ts';
import type { BackingReader, BlockStatus, ZeroWriteFlags } from '../driver.ts';
import {
  BITMAP_TYPE_DIRTY_TRACKING,
  FLAG_AUTO,
  FLAG_IN_USE,
  MAX_BITMAPS,
  MAX_DIRECTORY_SIZE,
  MAX_GRANULARITY_BITS,
  MAX_NAME_SIZE,
  MAX_PHYS_SIZE,
  MIN_GRANULARITY_BITS,
  entrySize,
  parseDirectory,
  serializeDirectory,
  type BitmapDirectoryEntry,
} from './bitmap-directory.ts';
import { CORRUPTION_TEXTS, MetadataGuard, Qcow2Corruption, RepairFailure, type MetadataMap } from './corruption.ts';
import {
  AUTOCLEAR_BITMAPS,
  AUTOCLEAR_DATA_FILE_RAW,
  INCOMPAT_CORRUPT,
  INCOMPAT_DIRTY,
  Qcow2FormatError,
  backingFormat,
  parseHeader,
  readBitmapsExtension,
  serializeHeader,
  withBitmapsExtension,
  type OptionCheck,
  type Qcow2Header,
} from './header.ts';
import { RefcountManager } from './refcounts.ts';
import { repairRefcounts } from './repair.ts';
import { EIO, EINVAL, ENOTSUP } from '../../../errno.ts';

export { Qcow2FormatError } from './header.ts';

export interface StoredBitmapInfo {
  name: string;
  granularity: number;
  inUse: boolean;
  auto: boolean;
}

export interface BitmapToStore {
  name: string;
  granularity: number;
  enabled: boolean;
  data: BitmapData;
}

/** cluster_bits is at most 21: cluster 0 is read whole, zero-filled past the end of the file. */
const MAX_CLUSTER_SIZE = 2 * 1024 * 1024;
/** QEMU's QCOW_MAX_L1_SIZE: the largest L1 table, in bytes. */
const MAX_L1_BYTES = 32 * 1024 * 1024;
const OFFSET_MASK = 0x00fffffffffffe00n;
const COPIED = 1n << 63n;
const COMPRESSED = 1n << 62n;
const ZERO = 1n;
/** What `hostCluster` answers for a cluster that holds no plain data cluster of its own. */
const UNALLOCATED_CLUSTER = -1;
const ZERO_CLUSTER = -2;
/** The largest zero buffer QEMU's block layer writes when a driver cannot zero a range otherwise (MAX_BOUNCE_BUFFER). */
const ZERO_BOUNCE_BYTES = 32768 * 512;
const COMPRESSED_CLUSTER = -3;
/** QEMU deflates compressed clusters with a 4 KiB window and memLevel 9 (raw deflate, default level). */
const DEFLATE_WINDOW_BITS = 12;
const DEFLATE_MEM_LEVEL = 9;
/** Bitmap data clusters per write when storing. */
const WRITE_BATCH_CLUSTERS = 16;

/** Bytes of a guest read that come from one run of host clusters: `length` bytes at `host` go to `at` in the buffer. */
interface HostRead {
  at: number;
  host: number;
  length: number;
}

/** Unallocated clusters of a guest read, at `at` in its buffer, that the backing chain holds. */
interface BackingRead {
  at: number;
  length: number;
}

/** What a guest read leaves to read once its clusters are looked up. */
interface ReadPlan {
  host: HostRead[];
  backing: BackingRead[];
}

/**
 * A qcow2 image over a byte store: guest data through L1/L2 tables, cluster
 * allocation through refcounts, and the bitmaps extension. Every metadata
 * update is ordered (write, flush, then the reference to it) so a crash
 * leaves an image that `qemu-img check` finds consistent.
 */
export class Qcow2Image {
  readonly version: 2 | 3;
  virtualSize: number;
  readonly clusterSize: number;
  /** Follows the node: blockdev-reopen switches it (setReadOnly). */
  readOnly: boolean;
  private readonly header: Qcow2Header;
  private readonly refcounts: RefcountManager;
  /**
   * Bitmaps whose table on disk holds exactly the bits a BitmapData had at a version
   * (loaded or stored since): storing that data unchanged again rewrites only its flags.
   */
  private readonly onDisk = new Map<string, { data: BitmapData; version: number }>();
  private readonly l1: bigint[];
  private readonly l2Cache = new Map<number, Buffer>();
  private readonly l2Entries: number;
  private readonly guard: MetadataGuard;
  /** QEMU frees the L1 table before it stores bitmaps and writes its caches back on close: no L2 overlap checks then. */
  private closing = false;
  private directory: BitmapDirectoryEntry[] = [];
  private backing: BackingReader | undefined;

  private constructor(
    private readonly store: ByteStore,
    checkOptions?: OptionCheck,
  ) {
    const cluster0 = Buffer.alloc(MAX_CLUSTER_SIZE);
    store.pread(cluster0, 0);
    this.header = parseHeader(cluster0, { readOnly: store.readOnly, checkOptions });
    this.version = this.header.version;
    this.clusterSize = 2 ** this.header.clusterBits;
    this.virtualSize = this.header.size;
    this.readOnly = store.readOnly;
    this.l2Entries = this.clusterSize / 8;
    // Tables are read where the header says, zeroes past the end of the file; their entries are checked when used, as QEMU does.
    const rawL1 = this.readExact(this.header.l1TableOffset, this.header.l1Size * 8);
    this.l1 = [];
    for (let i = 0; i < this.header.l1Size; i++) this.l1.push(rawL1.readBigUInt64BE(i * 8));
    this.guard = new MetadataGuard(this.metadataMap());
    this.refcounts = new RefcountManager(store, this.header, () => this.writeHeader(), this.guard);
    if (!this.readOnly) this.settleHeader();
    this.loadDirectory();
  }

  /**
   * What QEMU does to the header of an image it opens read-write: unknown
   * autoclear bits are cleared, and an image left dirty (refcounts not
   * trusted) has its refcounts checked and repaired, then is marked clean.
   */
  private settleHeader(): void {
    const known = AUTOCLEAR_BITMAPS | AUTOCLEAR_DATA_FILE_RAW;
    let changed = false;
    if (this.header.autoclearFeatures & ~known) {
      this.header.autoclearFeatures &= known;
      changed = true;
    }
    if (this.header.incompatibleFeatures & INCOMPAT_DIRTY) {
      try {
        repairRefcounts(this.store, this.header, this.l1, this.refcounts);
      } catch (error) {
        if (!(error instanceof Qcow2Corruption)) throw error;
        this.markCorrupt();
        throw new RepairFailure(error);
      }
      this.header.incompatibleFeatures &= ~INCOMPAT_DIRTY;
      changed = true;
    }
    if (!changed) return;
    this.store.flush();
    this.writeHeader();
    this.store.flush();
  }

  /** Where the metadata is now, for the overlap checks (QEMU's default set, "cached"). */
  private metadataMap(): MetadataMap {
    const image = this;
    return {
      clusterSize: this.clusterSize,
      get l1TableOffset() {
        return image.header.l1TableOffset;
      },
      get l1Size() {
        return image.header.l1Size;
      },
      get refcountTableOffset() {
        return image.header.refcountTableOffset;
      },
      get refcountTableBytes() {
        return image.header.refcountTableClusters * image.clusterSize;
      },
      snapshotsOffset: this.header.snapshotsOffset,
      // qblockd reads no snapshot table; it refuses writes to images that have one.
      snapshotsBytes: 0,
      l2Offsets: () => (this.closing ? [] : this.l1.map((entry) => Number(entry & OFFSET_MASK))),
      refcountBlockOffsets: () => this.refcounts.blockOffsets(),
      get bitmapDirectory() {
        if (!(image.header.autoclearFeatures & AUTOCLEAR_BITMAPS)) return null;
        const extension = readBitmapsExtension(image.header);
        return extension ? { offset: extension.directoryOffset, size: extension.directorySize } : { offset: 0, size: 0 };
      },
    };
  }

  /** The header's dirty bit: set only on an image opened read-only (a read-write open repairs it). */
  get dirty(): boolean {
    return (this.header.incompatibleFeatures & INCOMPAT_DIRTY) !== 0n;
  }

  get corrupt(): boolean {
    return (this.header.incompatibleFeatures & INCOMPAT_CORRUPT) !== 0n;
  }

  /** The node is being closed: what is written from now on (bitmaps, caches) is checked as QEMU checks it then. */
  startClosing(): void {
    this.closing = true;
  }

  /** After a fatal corruption: the image says so on disk, and nothing else is written. */
  markCorrupt(): void {
    this.header.incompatibleFeatures |= INCOMPAT_CORRUPT;
    this.writeHeader();
    this.store.flush();
  }

  static open(store: ByteStore, checkOptions?: OptionCheck): Qcow2Image {
    return new Qcow2Image(store, checkOptions);
  }

  /** The backing file name in the header, '' when there is none. */
  get backingFile(): string {
    return this.header.backingFile;
  }

  get backingFormat(): string | undefined {
    return backingFormat(this.header);
  }

  /** Attaches (or, with undefined, detaches) the image below: unallocated clusters read from it from now on. */
  setBacking(backing: BackingReader | undefined): void {
    this.backing = backing;
  }

  // ---- guest data ----

  read(offset: number, length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    const plan = this.planRead(offset, out);
    for (const piece of plan.host) {
      this.store.debugEvent?.('read_aio');
      this.fillFromHost(out, piece, this.store.pread(out.subarray(piece.at, piece.at + piece.length), piece.host));
    }
    for (const piece of plan.backing) {
      this.store.debugEvent?.('read_backing_aio');
      const target = out.subarray(piece.at, piece.at + piece.length);
      const available = this.backingBytes(offset + piece.at, piece.length);
      if (available > 0) this.backing!.read(offset + piece.at, available).copy(target);
      target.fill(0, available);
    }
    return out;
  }

  /**
   * `read` into `out`, with the data clusters read on the thread pool and the
   * unallocated ones from the backing chain, level by level into the one buffer.
   * Only the L2 lookups (the backing's too) happen before the reads are issued: data
   * clusters are never freed while the image is open, so the host offsets stay
   * theirs while the reads run.
   */
  readInto(offset: number, out: Buffer): Promise<void> {
    let plan: ReadPlan;
    try {
      plan = this.planRead(offset, out);
    } catch (error) {
      return Promise.reject(error);
    }
    const reads: Array<Promise<unknown>> = [];
    for (const piece of plan.host) {
      this.store.debugEvent?.('read_aio');
      reads.push(this.store.preadAsync(out.subarray(piece.at, piece.at + piece.length), piece.host).then((bytesRead) => this.fillFromHost(out, piece, bytesRead)));
    }
    for (const piece of plan.backing) {
      this.store.debugEvent?.('read_backing_aio');
      const target = out.subarray(piece.at, piece.at + piece.length);
      const available = this.backingBytes(offset + piece.at, piece.length);
      target.fill(0, available);
      if (available > 0) reads.push(this.backing!.readInto(offset + piece.at, target.subarray(0, available)));
    }
    // Most reads are one run, in this image or below it: its promise is the read's.
    if (reads.length === 1) return reads[0] as Promise<void>;
    return Promise.all(reads).then(() => undefined);
  }

  /**
   * Fills the holes, zero and compressed clusters of a guest read into `out`
   * and returns the runs still to read into it: host runs (clusters whose host
   * clusters follow each other make one) and runs of unallocated clusters the
   * backing chain holds.
   */
  private planRead(offset: number, out: Buffer): ReadPlan {
    const length = out.length;
    this.checkRange(offset, length);
    const hostReads: HostRead[] = [];
    const backingReads: BackingRead[] = [];
    let pending: HostRead | null = null;
    let below: BackingRead | null = null;
    this.forEachCluster(offset, length, (guestCluster, inCluster, count, at) => {
      const host = this.hostCluster(guestCluster);
      if (host === COMPRESSED_CLUSTER) {
        this.store.debugEvent?.('read_compressed');
        this.readCompressed(this.l2Entry(guestCluster)!).copy(out, at, inCluster, inCluster + count);
        return;
      }
      if (host === ZERO_CLUSTER || (host === UNALLOCATED_CLUSTER && !this.backing)) {
        out.fill(0, at, at + count);
        return;
      }
      if (host === UNALLOCATED_CLUSTER) {
        if (below && below.at + below.length === at) below.length += count;
        else {
          below = { at, length: count };
          backingReads.push(below);
        }
        return;
      }
      if (pending && pending.host + pending.length === host + inCluster && pending.at + pending.length === at) {
        pending.length += count;
        return;
      }
      pending = { at, host: host + inCluster, length: count };
      hostReads.push(pending);
    });
    return { host: hostReads, backing: backingReads };
  }

  /** How many of the `length` bytes from `offset` the backing image has; past its end the image reads as zeroes. */
  private backingBytes(offset: number, length: number): number {
    return Math.max(0, Math.min(length, this.backing!.size() - offset));
  }

  /** What lies past the end of the image file reads as zeroes. */
  private fillFromHost(out: Buffer, piece: HostRead, bytesRead: number): void {
    if (bytesRead < piece.length) out.fill(0, piece.at + bytesRead, piece.at + piece.length);
  }

  /**
   * Writes as QEMU's qcow2 allocates: a cluster that may be written in place (its own,
   * COPIED) is; a run of clusters of one L2 table that each need a new host cluster
   * (unallocated, zero without one, compressed, or shared) gets one allocation for all of
   * them, partial first and last clusters included (handle_alloc), filled around the data
   * with what the clusters read before. A run goes on in the host clusters right after
   * the ones the write used before it while they are free (qcow2_alloc_clusters_at), and
   * from the free-cluster search otherwise. The clusters the write replaces are freed a
   * little later than they are replaced (`writeChains`).
   */
  write(offset: number, data: Buffer): void {
    this.checkWritable();
    this.checkRange(offset, data.length);
    const chains: bigint[][] = [];
    try {
      this.writeChains(offset, data, chains);
    } finally {
      for (const chain of chains) this.freeReplaced(chain);
    }
  }

  /**
   * The write as QEMU's qcow2_co_pwritev_part makes it: chains of runs, each chain what one
   * qcow2_alloc_host_offset call gathers (runs that carry on in the host clusters after
   * the one before), each chain's data written by a task of its own. A task links its L2
   * entries, and frees the clusters they replaced, once its data is written, which is
   * while the next chain is allocated: the clusters of chain k are freed just before
   * chain k+2 is allocated (or at the end). `chains` collects what each chain replaced.
   */
  private writeChains(offset: number, data: Buffer, chains: bigint[][]): void {
    let nextHost: number | null = null;
    const startChain = () => {
      if (chains.length >= 2) this.freeReplaced(chains[chains.length - 2]!);
      chains.push([]);
    };
    for (let at = 0; at < data.length; ) {
      const guestCluster = Math.floor((offset + at) / this.clusterSize);
      const inCluster = (offset + at) % this.clusterSize;
      const touched = Math.ceil((inCluster + data.length - at) / this.clusterSize);
      const inTable = this.l2Entries - (guestCluster % this.l2Entries);
      const fresh = this.clustersNeedingAllocation(guestCluster, Math.min(touched, inTable));
      if (fresh === 0) {
        const count = Math.min(this.clusterSize - inCluster, data.length - at);
        const entry = this.l2Entry(guestCluster)!;
        const host = Number(entry & OFFSET_MASK);
        if (host !== nextHost) startChain();
        this.writeInPlace(guestCluster, entry, inCluster, data.subarray(at, at + count));
        nextHost = host + this.clusterSize;
        at += count;
        continue;
      }
      this.l2Table(Math.floor(guestCluster / this.l2Entries), true);
      const continued: number = nextHost === null ? 0 : this.refcounts.allocateAt(nextHost / this.clusterSize, fresh);
      const clusters = continued || fresh;
      const count = Math.min(clusters * this.clusterSize - inCluster, data.length - at);
      const piece = data.subarray(at, at + count);
      if (!continued) startChain();
      const host: number = continued ? nextHost! : this.refcounts.allocate(clusters, () => this.guard.check(inCluster, piece.length));
      this.writeNewClusters(guestCluster, clusters, inCluster, piece, host, chains[chains.length - 1]!);
      nextHost = host + clusters * this.clusterSize;
      at += count;
    }
  }

  private freeReplaced(entries: bigint[]): void {
    for (const entry of entries.splice(0)) this.freeDataCluster(entry);
  }

  /** Status of [offset, offset+length) in the backing image, which is zeroes past its end. */
  private backingStatus(offset: number, length: number): Omit<BlockStatus, 'allocated'> {
    const backingSize = this.backing?.size() ?? 0;
    if (offset >= backingSize) return { length, data: false, zero: true };
    return this.backing!.blockStatus(offset, Math.min(length, backingSize - offset));
  }

  /**
   * Compressed writes (QEMU's qcow2_co_pwritev_compressed): whole clusters
   * (the image's last one may be short and is padded with zeroes), each
   * deflated as QEMU deflates it and packed byte-wise after the previous one;
   * a cluster that does not shrink is written as usual. Like QEMU, a
   * compressed write never replaces an allocated cluster: EIO.
   */
  writeCompressed(offset: number, data: Buffer): void {
    this.checkWritable();
    this.checkRange(offset, data.length);
    if (offset % this.clusterSize !== 0 || (data.length % this.clusterSize !== 0 && offset + data.length !== this.virtualSize)) {
      throw new BlockIoError(EINVAL);
    }
    for (let at = 0; at < data.length; at += this.clusterSize) {
      const piece = data.subarray(at, at + this.clusterSize);
      const cluster = piece.length === this.clusterSize ? piece : Buffer.concat([piece, Buffer.alloc(this.clusterSize - piece.length)]);
      const compressed = lazyZlib().deflateRawSync(cluster, { windowBits: DEFLATE_WINDOW_BITS, memLevel: DEFLATE_MEM_LEVEL });
      if (compressed.length > this.clusterSize - 1) {
        this.write(offset + at, piece);
        continue;
      }
      const guestCluster = (offset + at) / this.clusterSize;
      this.l2Table(Math.floor(guestCluster / this.l2Entries), true);
      const entry = this.l2Entry(guestCluster);
      if (entry !== null && (entry & (COMPRESSED | OFFSET_MASK)) !== 0n) throw new BlockIoError(EIO);
      const host = this.refcounts.allocateBytes(compressed.length);
      this.guard.check(host, compressed.length);
      this.store.debugEvent?.('write_compressed');
      this.store.pwrite(compressed, host);
      const extraSectors = Math.floor((host + compressed.length - 1) / 512) - Math.floor(host / 512);
      this.setL2Entry(guestCluster, COMPRESSED | BigInt(host) | (BigInt(extraSectors) << BigInt(62 - (this.header.clusterBits - 8))));
    }
  }

  /** How many of the `limit` clusters from `first` on need a new host cluster to be written (QEMU's cluster_needs_new_alloc). */
  private clustersNeedingAllocation(first: number, limit: number): number {
    let count = 0;
    while (count < limit) {
      const entry = this.l2Entry(first + count) ?? 0n;
      const ownHost = (entry & COMPRESSED) === 0n && (entry & OFFSET_MASK) !== 0n && (entry & COPIED) !== 0n;
      if (ownHost) break;
      count++;
    }
    return count;
  }

  /**
   * `piece` into the `count` host clusters allocated for the guest clusters from `first` on,
   * at `host`: the first `inCluster` bytes and whatever follows the piece in the last cluster
   * copied from what they read before. The entries they had go into `replaced`, to be freed
   * once the L2 table points at the new ones.
   */
  private writeNewClusters(first: number, count: number, inCluster: number, piece: Buffer, host: number, replaced: bigint[]): void {
    const runLength = count * this.clusterSize;
    // Whole clusters need nothing around the data: it is written as it came.
    const run = inCluster === 0 && piece.length === runLength ? piece : Buffer.alloc(runLength);
    if (run !== piece) {
      if (inCluster > 0) this.readWholeCluster(first).copy(run, 0, 0, inCluster);
      const end = inCluster + piece.length;
      const lastStart = (count - 1) * this.clusterSize;
      if (end < runLength) this.readWholeCluster(first + count - 1).copy(run, end, end - lastStart);
      piece.copy(run, inCluster);
    }
    this.guard.check(host + inCluster, piece.length);
    this.writeAllocated(run, host);
    for (let i = 0; i < count; i++) {
      const entry = this.l2Entry(first + i);
      if (entry !== null) replaced.push(entry);
    }
    this.setL2Run(first, count, host);
  }

  /** `piece` into the host cluster a guest cluster owns (its L2 `entry`); a zero cluster's other bytes are written as zeroes. */
  private writeInPlace(guestCluster: number, entry: bigint, inCluster: number, piece: Buffer): void {
    const host = Number(entry & OFFSET_MASK);
    this.guard.check(host + inCluster, piece.length);
    if ((entry & ZERO) === 0n) {
      this.writeData(piece, host + inCluster);
      return;
    }
    const cluster = Buffer.alloc(this.clusterSize);
    piece.copy(cluster, inCluster);
    this.writeData(cluster, host);
    this.setL2Entry(guestCluster, BigInt(host) | COPIED);
  }

  /** Guest data to its host clusters; a blkdebug file child hears write_aio first, as from QEMU's qcow2. */
  private writeData(data: Buffer, host: number): void {
    this.store.debugEvent?.('write_aio');
    this.store.pwrite(data, host);
  }

  /** `writeData` into clusters just allocated for it; if the write fails they are freed again, as QEMU aborts the allocation. */
  private writeAllocated(data: Buffer, host: number): void {
    try {
      this.writeData(data, host);
    } catch (error) {
      if (error instanceof BlockIoError) this.refcounts.free(host, data.length);
      throw error;
    }
  }

  /** A cluster's guest bytes; the last cluster of an image whose size is not a whole number of clusters reads as zeroes past the end. */
  private readWholeCluster(guestCluster: number): Buffer {
    const start = guestCluster * this.clusterSize;
    const cluster = Buffer.alloc(this.clusterSize);
    this.read(start, Math.min(this.clusterSize, this.virtualSize - start)).copy(cluster);
    return cluster;
  }

  /** Points `count` guest clusters from `first` at consecutive host clusters from `host`. */
  private setL2Run(first: number, count: number, host: number): void {
    for (let done = 0; done < count; ) {
      const guestCluster = first + done;
      const l1Index = Math.floor(guestCluster / this.l2Entries);
      const table = this.l2Table(l1Index, true)!;
      const index = guestCluster % this.l2Entries;
      const inTable = Math.min(count - done, this.l2Entries - index);
      for (let i = 0; i < inTable; i++) {
        table.writeBigUInt64BE(BigInt(host + (done + i) * this.clusterSize) | COPIED, (index + i) * 8);
      }
      const tableOffset = Number(this.l1[l1Index]! & OFFSET_MASK);
      if (this.guard.mayWriteBack(tableOffset, 'activeL2')) this.store.pwrite(table.subarray(index * 8, (index + inTable) * 8), tableOffset + index * 8);
      done += inTable;
    }
  }

  /**
   * Zeroes as QEMU's block layer and qcow2 do: the request goes in pieces, the part before
   * the first cluster boundary, the whole clusters, the part after the last one. Whole
   * clusters are zeroed in their L2 entries (`zeroCluster`); so is a cluster only partly
   * asked for, when the rest of it already reads as zeroes and it holds no data of its own.
   * A piece that cannot be zeroed that way is written with zeroes, 16 MiB at a time (QEMU's
   * bounce buffer), each write a normal one, unless the request allows no fallback: ENOTSUP.
   */
  writeZeroes(offset: number, length: number, { mayUnmap = false, noFallback = false }: ZeroWriteFlags = {}): void {
    this.checkWritable();
    this.checkRange(offset, length);
    const end = offset + length;
    const headEnd = Math.min(end, Math.ceil(offset / this.clusterSize) * this.clusterSize);
    const bodyEnd = Math.max(headEnd, Math.floor(end / this.clusterSize) * this.clusterSize);
    for (const [from, to] of [[offset, headEnd], [headEnd, bodyEnd], [bodyEnd, end]] as const) {
      for (let at = from; at < to; ) {
        if (this.zeroPiece(at, to - at, mayUnmap)) break;
        if (noFallback) throw new BlockIoError(ENOTSUP);
        const count = Math.min(to - at, ZERO_BOUNCE_BYTES);
        this.write(at, Buffer.alloc(count));
        at += count;
      }
    }
  }

  /** Zeroes [offset, offset+length) in L2 entries, as qcow2_co_pwrite_zeroes; false where it cannot (QEMU's ENOTSUP). */
  private zeroPiece(offset: number, length: number, mayUnmap: boolean): boolean {
    const first = Math.floor(offset / this.clusterSize);
    const inCluster = offset % this.clusterSize;
    const end = offset + length;
    // The image's last cluster needs nothing past the end of the image.
    const tail = end === this.virtualSize ? 0 : (this.clusterSize - (end % this.clusterSize)) % this.clusterSize;
    if (inCluster !== 0 || tail !== 0) {
      const start = first * this.clusterSize;
      const rest = Math.min(tail, this.virtualSize - end);
      if (!this.statusSaysZero(start, inCluster) || !this.statusSaysZero(end, rest) || !this.holdsNoData(first)) return false;
      return this.zeroCluster(first, mayUnmap);
    }
    for (let cluster = first; cluster * this.clusterSize < end; cluster++) {
      if (!this.zeroCluster(cluster, mayUnmap)) return false;
    }
    return true;
  }

  /**
   * Makes one cluster read as zeroes through its L2 entry, as QEMU's qcow2_subcluster_zeroize
   * (its L2 table is made even if the entry stays as it was): version 3 sets the zero flag,
   * keeping the host cluster unless the write may unmap it (a compressed one is freed
   * either way); version 2 has no zero flag and, without a backing file, discards the
   * cluster instead. False where neither applies (version 2 over a backing file).
   */
  private zeroCluster(guestCluster: number, mayUnmap: boolean): boolean {
    if (this.version < 3 && this.backing) return false;
    this.l2Table(Math.floor(guestCluster / this.l2Entries), true);
    const entry = this.l2Entry(guestCluster) ?? 0n;
    const allocated = (entry & COMPRESSED) !== 0n || (entry & OFFSET_MASK) !== 0n;
    let replacement: bigint;
    if (this.version < 3) replacement = allocated ? 0n : entry;
    else replacement = entry & COMPRESSED || (mayUnmap && allocated) ? ZERO : entry | ZERO;
    if (replacement === entry) return true;
    this.setL2Entry(guestCluster, replacement);
    if (allocated && (replacement & OFFSET_MASK) === 0n) this.freeDataCluster(entry);
    return true;
  }

  /**
   * Whether block status reports all of [offset, offset+length) as zeroes (QEMU's is_zero):
   * unlike block-status.ts's readsAsZero, zeroes a backing node does not report do not count.
   */
  private statusSaysZero(offset: number, length: number): boolean {
    for (const run of statusRuns(this, offset, length)) if (!run.zero) return false;
    return true;
  }

  /** A cluster unallocated or zero: no data of its own, which a partial zeroing may replace. */
  private holdsNoData(guestCluster: number): boolean {
    const entry = this.l2Entry(guestCluster) ?? 0n;
    if (entry & COMPRESSED) return false;
    return (entry & ZERO) !== 0n || (entry & OFFSET_MASK) === 0n;
  }

  /**
   * Status of the clusters from `offset` on, up to `length` bytes: a run of
   * clusters of one kind. Unallocated clusters read as the backing chain
   * does there (zeroes without one); zero clusters are allocated but hold no data.
   */
  blockStatus(offset: number, length: number): BlockStatus {
    this.checkRange(offset, length);
    const kindAt = (guestCluster: number) => this.clusterKind(guestCluster);
    // A missing L2 table leaves its whole range unallocated: step over it at once.
    const step = (guestCluster: number): number =>
      this.l2Table(Math.floor(guestCluster / this.l2Entries), false) ? 1 : this.l2Entries - (guestCluster % this.l2Entries);
    const end = offset + length;
    const first = Math.floor(offset / this.clusterSize);
    const kind = kindAt(first);
    let next = first + (kind === 'unallocated' ? step(first) : 1);
    while (next * this.clusterSize < end && kindAt(next) === kind) next += kind === 'unallocated' ? step(next) : 1;
    const runLength = Math.min(next * this.clusterSize, end) - offset;
    if (kind === 'unallocated' && this.backing) return { ...this.backingStatus(offset, runLength), allocated: false };
    return { length: runLength, data: kind === 'data', zero: kind !== 'data', allocated: kind !== 'unallocated' };
  }

  /** Discard requests are ignored, as QEMU ignores them on nodes opened without discard=unmap. */
  discard(offset: number, length: number): void {
    this.checkRange(offset, length);
  }

  flush(): void {
    if (this.readOnly) return;
    this.guard.writeBack();
    this.store.flush();
  }

  close(): void {
    this.flush();
  }

  /** blockdev-reopen: writing needs the file to be writable already; going read-only flushes what is written. */
  setReadOnly(readOnly: boolean): void {
    if (!readOnly && this.store.readOnly) throw new Qcow2FormatError('Block node is read-only');
    if (readOnly) this.flush();
    this.readOnly = readOnly;
  }

  /**
   * block_resize. Growing makes the L1 table exactly as long as the new size needs
   * (a fresh table, then the header, then the old table freed); shrinking is
   * shrinkFrom. The header's size is written last, as QEMU does.
   */
  resize(size: number, checkBitmaps: () => void): void {
    this.checkWritable();
    if (size % 512 !== 0) throw new Qcow2FormatError('The new size must be a multiple of 512');
    checkBitmaps();
    const clusters = Math.ceil(size / this.clusterSize);
    const l1Needed = Math.ceil(clusters / this.l2Entries);
    const oldSize = this.virtualSize;
    if (size < oldSize) this.shrinkFrom(clusters, Math.ceil(oldSize / this.clusterSize));
    else if (l1Needed > this.l1.length) this.growL1(l1Needed);
    if (size > oldSize && this.backing && this.backing.size() > oldSize) this.zeroGrownArea(oldSize, size);
    this.header.size = size;
    this.writeHeader();
    this.store.flush();
    this.virtualSize = size;
  }

  /**
   * Growing over a backing file that reaches past the old end would show the backing file's
   * data there: as QEMU's truncate with BDRV_REQ_ZERO_WRITE, the new whole clusters become
   * zero clusters and the rest of the old last cluster is written with zeroes.
   */
  private zeroGrownArea(oldSize: number, size: number): void {
    const zeroStart = Math.ceil(oldSize / this.clusterSize) * this.clusterSize;
    this.virtualSize = size;
    try {
      for (let cluster = zeroStart / this.clusterSize; cluster * this.clusterSize < size; cluster++) {
        if (!this.zeroCluster(cluster, false)) throw new Qcow2FormatError('Failed to zero out new clusters: Operation not supported');
      }
      if (zeroStart > oldSize) this.write(oldSize, Buffer.alloc(Math.min(zeroStart, size) - oldSize));
    } catch (error) {
      this.virtualSize = oldSize;
      throw error;
    }
  }

  private growL1(entries: number): void {
    if (entries * 8 > MAX_L1_BYTES) throw new Qcow2FormatError('Failed to grow the L1 table: File too large');
    // The table's own bytes are written, not its clusters: at the end of the file, the file ends with the table (qcow2_grow_l1_table).
    const table = Buffer.alloc(entries * 8);
    this.l1.forEach((entry, index) => table.writeBigUInt64BE(entry, index * 8));
    const offset = this.refcounts.allocate(Math.ceil(table.length / this.clusterSize));
    this.store.pwrite(table, offset);
    this.store.flush();
    const old = { offset: this.header.l1TableOffset, bytes: this.header.l1Size * 8 };
    this.header.l1TableOffset = offset;
    this.header.l1Size = entries;
    this.writeHeader();
    this.store.flush();
    if (old.bytes > 0) this.refcounts.free(old.offset, old.bytes);
    while (this.l1.length < entries) this.l1.push(0n);
  }

  /**
   * Shrinking as QEMU's qcow2_co_truncate does it. The guest clusters [first, end) are
   * discarded table by table, through the lookup that gives an L1 entry without a table of
   * its own a fresh zeroed one first (so a shrink can allocate, and reuse clusters freed a
   * table earlier); then the L2 tables wholly past the new end are freed; then the refcount
   * table is written again without the blocks that count nothing; then the file is
   * cut after its last used cluster, a cut that may fail without failing the resize (QEMU
   * only warns). QEMU clears entries in its L2 cache: a table about to be freed keeps its
   * old entries on disk unless a later allocation flushed the cache first.
   */
  private shrinkFrom(first: number, end: number): void {
    const keptTables = Math.ceil(first / this.l2Entries);
    let unflushed: Array<() => void> = [];
    for (let l1Index = Math.floor(first / this.l2Entries); first < end && l1Index * this.l2Entries < end; l1Index++) {
      if (!(this.l1[l1Index]! & COPIED)) {
        for (const write of unflushed) write();
        unflushed = [];
      }
      const table = this.l2Table(l1Index, true)!;
      const tableOffset = Number(this.l1[l1Index]! & OFFSET_MASK);
      const from = Math.max(0, first - l1Index * this.l2Entries);
      const to = Math.min(this.l2Entries, end - l1Index * this.l2Entries);
      for (let index = from; index < to; index++) {
        const entry = table.readBigUInt64BE(index * 8);
        if (entry !== 0n) this.freeDataCluster(entry);
      }
      table.fill(0, from * 8, to * 8);
      const write = () => this.store.pwrite(table.subarray(from * 8, to * 8), tableOffset + from * 8);
      if (l1Index < keptTables) write();
      else unflushed.push(write);
    }
    if (keptTables < this.l1.length) {
      this.store.pwrite(Buffer.alloc((this.l1.length - keptTables) * 8), this.header.l1TableOffset + keptTables * 8);
      this.store.flush();
    }
    for (let l1Index = keptTables; l1Index < this.l1.length; l1Index++) {
      const tableOffset = Number(this.l1[l1Index]! & OFFSET_MASK);
      this.l1[l1Index] = 0n;
      this.l2Cache.delete(l1Index);
      if (tableOffset !== 0) this.refcounts.free(tableOffset, this.clusterSize);
    }
    this.store.flush();
    this.refcounts.shrinkTable();
    this.cutFreeTail();
  }

  private cutFreeTail(): void {
    const fileSize = this.store.size();
    let last = Math.ceil(fileSize / this.clusterSize) - 1;
    while (last >= 0 && this.refcounts.get(last) === 0) last--;
    // A refcount table that counts nothing (a hostile image) leaves the file as it is.
    if (last < 0 || (last + 1) * this.clusterSize >= fileSize) return;
    try {
      this.store.truncate((last + 1) * this.clusterSize);
    } catch {
      // QEMU: "Failed to truncate the tail of the image", a warning only.
    }
  }

  private freeDataCluster(entry: bigint): void {
    if (entry & COMPRESSED) {
      const { offset, bytes } = this.compressedExtent(entry);
      this.refcounts.free(offset, bytes);
      return;
    }
    const host = Number(entry & OFFSET_MASK);
    if (host !== 0) this.refcounts.free(host, this.clusterSize);
  }

  // ---- bitmaps ----

  storedBitmaps(): StoredBitmapInfo[] {
    return this.directory.map((entry) => ({
      name: entry.name,
      granularity: 2 ** entry.granularityBits,
      inUse: (entry.flags & FLAG_IN_USE) !== 0,
      auto: (entry.flags & FLAG_AUTO) !== 0,
    }));
  }

  loadBitmap(name: string, into: BitmapData): void {
    const entry = this.findEntry(name);
    const expected = Math.ceil(into.serializedByteLength() / this.clusterSize);
    if (entry.tableSize !== expected) throw new Qcow2FormatError(`qcow2: bitmap '${name}' has a table of the wrong size`);
    const table = this.readBitmapTable(entry);
    const buffer = Buffer.alloc(this.clusterSize);
    table.forEach((tableEntry, index) => {
      const offset = Number(tableEntry & OFFSET_MASK);
      if (offset === 0) {
        if (tableEntry & 1n) into.fillSerialized(index * this.clusterSize, this.clusterSize);
        return;
      }
      this.store.pread(buffer.fill(0), offset);
      into.writeSerialized(index * this.clusterSize, buffer);
    });
    this.onDisk.set(name, { data: into, version: into.version });
  }

  /** On a writable open: every bitmap we loaded is now in use until we store it. */
  markBitmapsInUse(): void {
    this.checkWritable();
    if (this.directory.every((entry) => entry.flags & FLAG_IN_USE)) return;
    for (const entry of this.directory) entry.flags |= FLAG_IN_USE;
    const extension = readBitmapsExtension(this.header)!;
    this.guard.check(extension.directoryOffset, extension.directorySize, 'bitmapDirectory');
    this.store.pwrite(serializeDirectory(this.directory), extension.directoryOffset);
    this.store.flush();
  }

  /** qcow2's own limits for a new persistent bitmap: QEMU's message, without its "Can't make..." prefix. */
  checkNewPersistentBitmap(name: string, granularity: number): string | null {
    if (this.version < 3) return 'Cannot store dirty bitmaps in qcow2 v2 files';
    const granularityBits = Math.log2(granularity);
    if (granularityBits < MIN_GRANULARITY_BITS) return `Granularity exceeds minimum (${2 ** MIN_GRANULARITY_BITS} bytes)`;
    if (granularityBits > MAX_GRANULARITY_BITS) return `Granularity exceeds maximum (${2 ** MAX_GRANULARITY_BITS} bytes)`;
    if (this.virtualSize > MAX_PHYS_SIZE * 8 * granularity) return 'Too much space will be occupied by the bitmap. Use larger granularity';
    if (Buffer.byteLength(name) > MAX_NAME_SIZE) return `Name length exceeds maximum (${MAX_NAME_SIZE} characters)`;
    if (this.directory.length === 0) return null;
    if (this.directory.length >= MAX_BITMAPS) return 'Maximum number of persistent bitmaps is already reached';
    if (this.directorySize() + entrySize(Buffer.byteLength(name), 0) > MAX_DIRECTORY_SIZE) {
      return 'Not enough space in the bitmap directory';
    }
    return null;
  }

  /**
   * Writes these bitmaps (in-use cleared, auto when enabled) into fresh
   * clusters, then a fresh directory, then the header; frees what they
   * replace only afterwards. Stored bitmaps not listed stay as they are; a
   * bitmap whose bits are still those on disk keeps its table.
   */
  storeBitmaps(bitmaps: BitmapToStore[]): void {
    this.checkWritable();
    if (bitmaps.length === 0) return;
    const replaced: BitmapDirectoryEntry[] = [];
    const entries = [...this.directory];
    for (const bitmap of bitmaps) {
      const flags = bitmap.enabled ? FLAG_AUTO : 0;
      const known = this.onDisk.get(bitmap.name);
      const index = entries.findIndex((existing) => existing.name === bitmap.name);
      if (index >= 0 && known?.data === bitmap.data && known.version === bitmap.data.version) {
        entries[index] = { ...entries[index]!, flags };
        continue;
      }
      const table = this.writeBitmapData(bitmap.data);
      const entry: BitmapDirectoryEntry = {
        ...table,
        flags,
        type: BITMAP_TYPE_DIRTY_TRACKING,
        granularityBits: Math.log2(bitmap.granularity),
        name: bitmap.name,
        extraData: Buffer.alloc(0),
      };
      if (index >= 0) replaced.push(entries.splice(index, 1, entry)[0]!);
      else entries.push(entry);
    }
    if (entries.length > MAX_BITMAPS) throw new Qcow2FormatError('Maximum number of persistent bitmaps is already reached');
    this.store.flush();
    this.replaceDirectory(entries);
    for (const entry of replaced) this.freeBitmapClusters(entry);
    this.store.flush();
    for (const bitmap of bitmaps) this.onDisk.set(bitmap.name, { data: bitmap.data, version: bitmap.data.version });
  }

  /**
   * Absence is not an error, as in QEMU: a persistent bitmap added since the
   * last store, or already taken out by an aborted transaction, is not on disk.
   */
  removeBitmap(name: string): void {
    this.checkWritable();
    const entry = this.directory.find((candidate) => candidate.name === name);
    if (!entry) return;
    this.onDisk.delete(name);
    this.replaceDirectory(this.directory.filter((candidate) => candidate !== entry));
    this.freeBitmapClusters(entry);
    this.store.flush();
  }

  // ---- internals ----

  private loadDirectory(): void {
    const extension = readBitmapsExtension(this.header);
    if (!extension || !(this.header.autoclearFeatures & AUTOCLEAR_BITMAPS) || this.version < 3) return;
    if (extension.directorySize === 0) throw new Qcow2FormatError('qcow2: bitmap directory size is invalid');
    this.directory = parseDirectory(this.readExact(extension.directoryOffset, extension.directorySize), extension.nbBitmaps);
    const names = new Set<string>();
    for (const entry of this.directory) {
      if (names.has(entry.name)) throw new Qcow2FormatError(`qcow2: duplicate bitmap name '${entry.name}'`);
      names.add(entry.name);
      if (entry.tableOffset % this.clusterSize !== 0 || entry.tableOffset + entry.tableSize * 8 > this.store.size()) {
        throw new Qcow2FormatError(`qcow2: bitmap '${entry.name}' has its table outside the image`);
      }
    }
  }

  private directorySize(): number {
    return this.directory.reduce((sum, entry) => sum + entrySize(Buffer.byteLength(entry.name), entry.extraData.length), 0);
  }

  private findEntry(name: string): BitmapDirectoryEntry {
    const entry = this.directory.find((candidate) => candidate.name === name);
    if (!entry) throw new Qcow2FormatError(`qcow2: no bitmap '${name}' in the image`);
    return entry;
  }

  private readBitmapTable(entry: BitmapDirectoryEntry): bigint[] {
    const raw = this.readExact(entry.tableOffset, entry.tableSize * 8);
    const table: bigint[] = [];
    for (let i = 0; i < entry.tableSize; i++) {
      const value = raw.readBigUInt64BE(i * 8);
      const offset = Number(value & OFFSET_MASK);
      if (value & 0xff000000000001fen || (offset !== 0 && value & 1n)) {
        throw new Qcow2FormatError(`qcow2: bitmap '${entry.name}' has an invalid table entry`);
      }
      if (offset % this.clusterSize !== 0 || offset >= this.store.size()) {
        throw new Qcow2FormatError(`qcow2: bitmap '${entry.name}' has data outside the image`);
      }
      table.push(value);
    }
    return table;
  }

  /**
   * Data clusters for every non-zero part, then the table pointing at them.
   * The data clusters are allocated as one run and written in large batches.
   */
  private writeBitmapData(data: BitmapData): { tableOffset: number; tableSize: number } {
    const byteLength = data.serializedByteLength();
    const tableSize = Math.ceil(byteLength / this.clusterSize);
    const table = Buffer.alloc(tableSize * 8);
    const dirtyClusters: number[] = [];
    for (let index = 0; index < tableSize; index++) {
      if (data.anyDirtyInSerialized(index * this.clusterSize, this.clusterSize)) dirtyClusters.push(index);
    }
    if (dirtyClusters.length > 0) {
      const runStart = this.refcounts.allocate(dirtyClusters.length, () => this.guard.check(0, this.clusterSize));
      const batch = Buffer.alloc(this.clusterSize * Math.min(dirtyClusters.length, WRITE_BATCH_CLUSTERS));
      for (let done = 0; done < dirtyClusters.length; ) {
        const count = Math.min(dirtyClusters.length - done, WRITE_BATCH_CLUSTERS);
        for (let i = 0; i < count; i++) {
          const index = dirtyClusters[done + i]!;
          const length = Math.min(this.clusterSize, byteLength - index * this.clusterSize);
          const slot = batch.subarray(i * this.clusterSize, (i + 1) * this.clusterSize);
          data.readSerialized(index * this.clusterSize, length, slot);
          slot.fill(0, length);
          table.writeBigUInt64BE(BigInt(runStart + (done + i) * this.clusterSize), index * 8);
        }
        for (let i = 0; i < count; i++) this.guard.check(runStart + (done + i) * this.clusterSize, this.clusterSize);
        this.store.pwrite(batch.subarray(0, count * this.clusterSize), runStart + done * this.clusterSize);
        done += count;
      }
    }
    const tableOffset = this.refcounts.allocate(Math.max(1, Math.ceil(table.length / this.clusterSize)), () => this.guard.check(0, table.length));
    this.guard.check(tableOffset, table.length);
    this.store.pwrite(table, tableOffset);
    return { tableOffset, tableSize };
  }

  private freeBitmapClusters(entry: BitmapDirectoryEntry): void {
    for (const value of this.readBitmapTable(entry)) {
      const offset = Number(value & OFFSET_MASK);
      if (offset) this.refcounts.free(offset, this.clusterSize);
    }
    this.refcounts.free(entry.tableOffset, Math.max(1, entry.tableSize * 8));
  }

  /** New directory in fresh clusters, flushed, then the header; then the old directory is freed. */
  private replaceDirectory(entries: BitmapDirectoryEntry[]): void {
    const old = readBitmapsExtension(this.header);
    const hadValidDirectory = old && this.header.autoclearFeatures & AUTOCLEAR_BITMAPS;
    if (entries.length > 0) {
      const bytes = serializeDirectory(entries);
      if (bytes.length > MAX_DIRECTORY_SIZE) throw new Qcow2FormatError('Not enough space in the bitmap directory');
      const offset = this.refcounts.allocate(Math.ceil(bytes.length / this.clusterSize), () => this.guard.check(0, bytes.length));
      this.guard.check(offset, bytes.length);
      this.store.pwrite(bytes, offset);
      this.guard.writeBack();
      this.store.flush();
      this.header.extensions = withBitmapsExtension(this.header, { nbBitmaps: entries.length, directorySize: bytes.length, directoryOffset: offset });
      this.header.autoclearFeatures |= AUTOCLEAR_BITMAPS;
    } else {
      this.header.extensions = withBitmapsExtension(this.header, null);
      this.header.autoclearFeatures &= ~AUTOCLEAR_BITMAPS;
    }
    this.writeHeader();
    this.store.flush();
    if (old && hadValidDirectory) this.refcounts.free(old.directoryOffset, old.directorySize);
    this.directory = entries;
  }

  private writeHeader(): void {
    this.store.pwrite(serializeHeader(this.header, this.clusterSize), 0);
  }

  private forEachCluster(offset: number, length: number, visit: (guestCluster: number, inCluster: number, count: number, at: number) => void): void {
    let at = 0;
    while (at < length) {
      const position = offset + at;
      const guestCluster = Math.floor(position / this.clusterSize);
      const inCluster = position % this.clusterSize;
      const count = Math.min(this.clusterSize - inCluster, length - at);
      visit(guestCluster, inCluster, count, at);
      at += count;
    }
  }

  /**
   * The L2 table of one L1 entry; with `allocate`, one this image alone owns
   * (COPIED), made as QEMU makes it: a fresh cluster, refcounts written back,
   * the table (a copy of a shared one) written, then the L1 entry.
   */
  private l2Table(l1Index: number, allocate: boolean): Buffer | null {
    const entry = this.l1[l1Index]!;
    const cached = this.l2Cache.get(l1Index);
    if (cached && (!allocate || entry & COPIED)) return cached;
    const offset = Number(entry & OFFSET_MASK);
    if (offset % this.clusterSize !== 0) throw new Qcow2Corruption(CORRUPTION_TEXTS.unalignedL2(offset, l1Index));
    // COPIED without a table is nonsense QEMU 7.2 aborts on; qblockd gives the entry a table of its own.
    if (allocate && (!(entry & COPIED) || offset === 0)) return this.allocateL2(l1Index, offset, cached);
    if (offset === 0) return null;
    const table = this.readExact(offset, this.clusterSize);
    // A table past the end of the file reads as zeroes; it is not kept, so a hostile L1 table cannot fill the cache.
    if (offset < this.store.size()) this.l2Cache.set(l1Index, table);
    return table;
  }

  private allocateL2(l1Index: number, oldOffset: number, cached: Buffer | undefined): Buffer {
    const table = oldOffset === 0 ? Buffer.alloc(this.clusterSize) : Buffer.from(cached ?? this.readExact(oldOffset, this.clusterSize));
    const newOffset = this.refcounts.allocate(1, () => {
      throw new Qcow2Corruption(CORRUPTION_TEXTS.l2TableAtZero);
    });
    this.guard.writeBack();
    this.guard.check(newOffset, this.clusterSize, 'activeL2');
    this.store.pwrite(table, newOffset);
    this.store.flush();
    const previous = this.l1[l1Index]!;
    this.l1[l1Index] = BigInt(newOffset) | COPIED;
    try {
      this.writeL1Entry(l1Index);
    } catch (error) {
      this.l1[l1Index] = previous;
      // After a corruption nothing more is written; after an I/O error the cluster goes back, as in QEMU.
      if (!(error instanceof Qcow2Corruption)) this.refcounts.free(newOffset, this.clusterSize);
      throw error;
    }
    this.l2Cache.set(l1Index, table);
    if (oldOffset !== 0) this.refcounts.free(oldOffset, this.clusterSize);
    return table;
  }

  private writeL1Entry(l1Index: number): void {
    const at = this.header.l1TableOffset + l1Index * 8;
    this.guard.check(at, 8, 'activeL1');
    const raw = Buffer.alloc(8);
    raw.writeBigUInt64BE(this.l1[l1Index]!);
    this.store.pwrite(raw, at);
  }

  /** Unallocated (no entry, or one without a host cluster or zero flag), a zero cluster, or data. */
  private clusterKind(guestCluster: number): 'unallocated' | 'zero' | 'data' {
    const host = this.hostCluster(guestCluster);
    if (host === UNALLOCATED_CLUSTER) return 'unallocated';
    return host === ZERO_CLUSTER ? 'zero' : 'data';
  }

  /**
   * Where a guest cluster's data lies: its host offset, or UNALLOCATED_CLUSTER,
   * ZERO_CLUSTER or COMPRESSED_CLUSTER. The same answer as `l2Entry`, read as two
   * 32-bit halves: every guest read and block status asks it once per cluster,
   * and a BigInt per entry was a good part of their cost.
   */
  private hostCluster(guestCluster: number): number {
    const l1Index = Math.floor(guestCluster / this.l2Entries);
    const table = this.l2Table(l1Index, false);
    if (!table) return UNALLOCATED_CLUSTER;
    const l2Index = guestCluster % this.l2Entries;
    const high = table.readUInt32BE(l2Index * 8);
    const low = table.readUInt32BE(l2Index * 8 + 4);
    // Bit 62 (compressed) is bit 30 of the high half; bit 0 (zero) is in the low half.
    if (high & 0x40000000) return COMPRESSED_CLUSTER;
    const host = (high & 0x00ffffff) * 0x100000000 + ((low & 0xfffffe00) >>> 0);
    if (host % this.clusterSize !== 0) {
      const l2Offset = Number(this.l1[l1Index]! & OFFSET_MASK);
      throw new Qcow2Corruption(CORRUPTION_TEXTS.unalignedCluster(host, l2Offset, l2Index));
    }
    if (low & 1) return ZERO_CLUSTER;
    return host === 0 ? UNALLOCATED_CLUSTER : host;
  }

  private l2Entry(guestCluster: number): bigint | null {
    const table = this.l2Table(Math.floor(guestCluster / this.l2Entries), false);
    if (!table) return null;
    const l2Index = guestCluster % this.l2Entries;
    const entry = table.readBigUInt64BE(l2Index * 8);
    if (entry === 0n) return null;
    const host = Number(entry & OFFSET_MASK);
    if (!(entry & COMPRESSED) && host % this.clusterSize !== 0) {
      const l2Offset = Number(this.l1[Math.floor(guestCluster / this.l2Entries)]! & OFFSET_MASK);
      throw new Qcow2Corruption(CORRUPTION_TEXTS.unalignedCluster(host, l2Offset, l2Index));
    }
    return entry;
  }

  private setL2Entry(guestCluster: number, value: bigint): void {
    const l1Index = Math.floor(guestCluster / this.l2Entries);
    const table = this.l2Table(l1Index, true)!;
    const index = guestCluster % this.l2Entries;
    table.writeBigUInt64BE(value, index * 8);
    const tableOffset = Number(this.l1[l1Index]! & OFFSET_MASK);
    if (this.guard.mayWriteBack(tableOffset, 'activeL2')) this.store.pwrite(table.subarray(index * 8, index * 8 + 8), tableOffset + index * 8);
  }

  /** Where a compressed cluster's bytes lie in the file: its descriptor's offset and sector count. */
  private compressedExtent(entry: bigint): { offset: number; bytes: number } {
    const offsetBits = BigInt(62 - (this.header.clusterBits - 8));
    const offset = Number(entry & ((1n << offsetBits) - 1n));
    const sectors = Number((entry >> offsetBits) & ((1n << BigInt(this.header.clusterBits - 8)) - 1n)) + 1;
    return { offset, bytes: sectors * 512 - (offset % 512) };
  }

  private readCompressed(entry: bigint): Buffer {
    const { offset, bytes } = this.compressedExtent(entry);
    const compressed = this.readExact(offset, bytes);
    try {
      const data = lazyZlib().inflateRawSync(compressed, { finishFlush: 2 });
      const out = Buffer.alloc(this.clusterSize);
      data.copy(out, 0, 0, Math.min(data.length, this.clusterSize));
      return out;
    } catch {
      throw new Qcow2FormatError('qcow2: a compressed cluster cannot be decompressed');
    }
  }

  private checkRange(offset: number, length: number): void {
    if (offset < 0 || length < 0 || offset + length > this.virtualSize) throw new Qcow2FormatError('qcow2: request beyond the end of the image');
  }

  private checkWritable(): void {
    if (this.readOnly) throw new Qcow2FormatError('Block node is read-only');
    if (this.header.nbSnapshots > 0) throw new Qcow2FormatError('qblockd cannot write to qcow2 images with internal snapshots');
  }

  private readExact(offset: number, length: number): Buffer {
    const buffer = Buffer.alloc(length);
    this.store.pread(buffer, offset);
    return buffer;
  }
}
