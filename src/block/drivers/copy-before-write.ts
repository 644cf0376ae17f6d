import type { ImageInfo } from '../../schema/generated/qapi-types.ts';
import { BitmapData } from '../bitmap/bitmap-data.ts';
import { DirtyBitmap } from '../bitmap/dirty-bitmap.ts';
import { readsAsZero } from '../block-status.ts';
import { BlockIoError } from '../io-error.ts';
import { EACCES, ETIMEDOUT } from '../../errno.ts';
import { finishesAt, measureDue, now } from '../throttle/completion.ts';
import type { BlockChildIo } from '../node.ts';
import type { BlockDriver, InternalBitmaps, SnapshotSource, ZeroWriteFlags } from './driver.ts';

/** block-copy's largest single copy (BLOCK_COPY_MAX_BUFFER): a run of clusters goes to the target as one request up to this. */
const MAX_COPY_BYTES = 1 << 20;

export interface CopyFailure {
  operation: 'read' | 'write';
  errno: number;
}

export type OnCbwError = 'break-guest-write' | 'break-snapshot';

/**
 * The copy-before-write filter (QEMU 7.2's block/copy-before-write.c with its
 * block-copy state). Before a write reaches the source (`file`), the old data
 * of the clusters still in the copy set goes to `target`. The source's
 * pre-write view stays readable as a snapshot: copied clusters from the
 * target, the others from the source. A backup job drives the same copy set
 * from its copy loop; fleecing reads the snapshot through snapshot-access.
 *
 * Three unnamed, disabled bitmaps show what it does, as in QEMU: the copy set
 * on the source, the `done` and `access` bitmaps on the filter itself.
 */
export class CopyBeforeWriteDriver implements BlockDriver, SnapshotSource {
  readonly format = 'copy-before-write';
  readonly isFilter = true;
  readonly reportsChildClusterSize = true;
  readonly copySet: DirtyBitmap;
  private readonly done: DirtyBitmap;
  private readonly access: DirtyBitmap;
  private snapshotBroken = false;
  /** Counts copies made ahead of guest writes: while it stays put, the copy set only lost what the job copied. */
  writeCopies = 0;
  /** Every cluster copied, by the job or before a guest write (a backup's progress). */
  onCopied: (bytes: number) => void = () => {};

  constructor(
    private readonly child: BlockChildIo,
    private readonly target: BlockChildIo,
    options: {
      /** The user's `bitmap`: only its regions are protected and readable in the snapshot. */
      bitmap?: BitmapData;
      /** A backup's own copy set (the snapshot stays readable everywhere). */
      copySet?: BitmapData;
      /** The unit of copies and of the snapshot's bitmaps (block/block-copy.ts). */
      clusterSize: number;
      onCbwError?: OnCbwError;
      /** backup's `compress`: data goes to the target as compressed clusters. */
      compress?: boolean;
      /** cbw-timeout in seconds (0: none): a copy ahead of a guest write that takes longer fails with ETIMEDOUT. */
      timeoutSeconds?: number;
    },
  ) {
    this.compress = options.compress === true;
    this.timeoutMs = (options.timeoutSeconds ?? 0) * 1000;
    const diskSize = child.size();
    const granularity = options.clusterSize;
    this.copyClusterSize = granularity;
    const unnamed = (bitmapGranularity: number) =>
      new DirtyBitmap('', new BitmapData({ diskSize, granularity: bitmapGranularity }), { enabled: false, persistent: false });
    const protectedBits = options.bitmap ?? options.copySet;
    this.copySet = unnamed(granularity);
    if (protectedBits) this.copySet.data.mergeFrom(protectedBits);
    else this.copySet.data.markRange(0, diskSize);
    this.done = unnamed(granularity);
    this.access = unnamed(granularity);
    if (options.bitmap) this.access.data.mergeFrom(options.bitmap);
    else this.access.data.markRange(0, diskSize);
    this.onCbwError = options.onCbwError ?? 'break-guest-write';
  }

  private readonly onCbwError: OnCbwError;
  private readonly copyClusterSize: number;
  private readonly compress: boolean;
  private readonly timeoutMs: number;

  snapshotSource(): SnapshotSource {
    return this;
  }

  internalBitmaps(): InternalBitmaps {
    return { own: [this.done, this.access], file: [this.copySet] };
  }

  size(): number {
    return this.child.size();
  }

  read(offset: number, length: number): Buffer {
    return this.child.read(offset, length);
  }

  write(offset: number, data: Buffer): void {
    this.copyBefore(offset, data.length);
    this.child.write(offset, data);
  }

  writeZeroes(offset: number, length: number, flags: ZeroWriteFlags = {}): void {
    this.copyBefore(offset, length);
    this.child.writeZeroes(offset, length, flags);
  }

  discard(offset: number, length: number): void {
    this.copyBefore(offset, length);
    this.child.discard(offset, length);
  }

  flush(): void {
    this.child.flush();
  }

  close(): void {}

  imageInfo(): ImageInfo {
    const childInfo = this.child.imageInfo();
    const info: ImageInfo = { 'virtual-size': this.child.size(), filename: childInfo.filename, format: this.format };
    if (childInfo['actual-size'] !== undefined) info['actual-size'] = childInfo['actual-size'];
    return info;
  }

  /** Copies [offset, offset+length) (cluster-aligned) from the source to the target and takes it out of the copy set. */
  /** Block status of the source: the range can be copied as zeroes. */
  sourceReadsAsZero(offset: number, length: number): boolean {
    return readsAsZero(this.child, offset, length);
  }

  copy(offset: number, length: number): CopyFailure | null {
    if (this.sourceReadsAsZero(offset, length)) {
      try {
        this.target.writeZeroes(offset, length);
      } catch (error) {
        return { operation: 'write', errno: errnoOf(error) };
      }
      return this.copied(offset, length);
    }
    let buffer: Buffer;
    try {
      buffer = this.child.read(offset, length);
    } catch (error) {
      return { operation: 'read', errno: errnoOf(error) };
    }
    try {
      this.writeTarget(offset, buffer);
    } catch (error) {
      return { operation: 'write', errno: errnoOf(error) };
    }
    return this.copied(offset, length);
  }

  /**
   * Cluster by cluster, as block-copy's source block status splits a copy:
   * clusters that read as zeroes become zero writes, the others data
   * (compressed when the backup asked for it).
   */
  private writeTarget(offset: number, buffer: Buffer): void {
    const granularity = this.copySet.data.granularity;
    for (let at = 0; at < buffer.length; ) {
      let end = Math.min(buffer.length, at + granularity);
      const zero = isZero(buffer.subarray(at, end));
      while (end < buffer.length && isZero(buffer.subarray(end, Math.min(buffer.length, end + granularity))) === zero) {
        end = Math.min(buffer.length, end + granularity);
      }
      const piece = buffer.subarray(at, end);
      if (zero) this.target.writeZeroes(offset + at, piece.length);
      else if (this.compress) this.target.writeCompressed!(offset + at, piece);
      else this.target.write(offset + at, piece);
      at = end;
    }
  }

  private copied(offset: number, length: number): null {
    this.copySet.data.resetRange(offset, length);
    // Progress counts whole clusters, as the job's total does: a last, partial cluster counts in full.
    const granularity = this.copySet.data.granularity;
    this.onCopied(Math.ceil((offset + length) / granularity) * granularity - Math.floor(offset / granularity) * granularity);
    return null;
  }

  /**
   * Before a guest write: the clusters it touches that are still protected go
   * to the target first, each run of them as one request. If that fails, or
   * takes longer than cbw-timeout (the target is throttled), on-cbw-error
   * decides: the guest write fails, or the snapshot breaks (its reads fail
   * from then on) and the write goes ahead. A copy that timed out still
   * completes, as QEMU's goes on in the background, but its clusters do not
   * count as done. Otherwise the whole written range counts as done.
   */
  private copyBefore(offset: number, length: number): void {
    if (this.snapshotBroken) return;
    const granularity = this.copySet.data.granularity;
    const start = Math.floor(offset / granularity) * granularity;
    const end = Math.min(Math.ceil((offset + length) / granularity) * granularity, this.copySet.data.diskSize);
    const startedAt = now();
    const { dueAt, outcome } = measureDue(() => this.copyRuns(start, end));
    if ('error' in outcome) throw outcome.error;
    let failure = outcome.value;
    const deadline = this.timeoutMs > 0 ? startedAt + this.timeoutMs : Infinity;
    if (!failure && dueAt > deadline) failure = { operation: 'write', errno: ETIMEDOUT };
    finishesAt(Math.min(dueAt, deadline));
    if (failure) {
      if (this.onCbwError === 'break-guest-write') throw new BlockIoError(failure.errno);
      this.snapshotBroken = true;
      return;
    }
    this.done.data.markRange(start, end - start);
  }

  /** Copies the runs of protected clusters in [start, end); the first failure stops it. */
  private copyRuns(start: number, end: number): CopyFailure | null {
    const data = this.copySet.data;
    const granularity = data.granularity;
    for (let at = start; at < end; at += granularity) {
      if (!data.getChunk(at / granularity)) continue;
      let runEnd = at + granularity;
      while (runEnd < end && runEnd - at < MAX_COPY_BYTES && data.getChunk(runEnd / granularity)) runEnd += granularity;
      const failure = this.copy(at, Math.min(runEnd, data.diskSize) - at);
      if (failure) return failure;
      this.writeCopies++;
      at = runEnd - granularity;
    }
    return null;
  }

  // ---- the snapshot (what snapshot-access reads) ------------------------

  snapshotRead(offset: number, length: number): Buffer {
    const granularity = this.copyClusterSize;
    const out = Buffer.alloc(length);
    for (let at = offset; at < offset + length; ) {
      const cluster = Math.floor(at / granularity);
      const next = Math.min((cluster + 1) * granularity, offset + length);
      if (this.snapshotBroken || !this.access.data.getChunk(cluster)) throw new BlockIoError(EACCES);
      const source = this.done.data.getChunk(cluster) ? this.target : this.child;
      source.read(at, next - at).copy(out, at - offset);
      at = next;
    }
    return out;
  }

  /** Discarding snapshot regions ends their protection: nothing more is copied there. */
  snapshotDiscard(offset: number, length: number): void {
    this.copySet.data.resetRange(offset, length);
    this.access.data.resetRange(offset, length);
  }
}

const ZEROES = Buffer.alloc(1 << 20);

function isZero(buffer: Buffer): boolean {
  for (let at = 0; at < buffer.length; at += ZEROES.length) {
    const piece = buffer.subarray(at, at + ZEROES.length);
    if (!piece.equals(ZEROES.subarray(0, piece.length))) return false;
  }
  return true;
}

function errnoOf(error: unknown): number {
  if (error instanceof BlockIoError) return error.errno;
  return 5;
}
