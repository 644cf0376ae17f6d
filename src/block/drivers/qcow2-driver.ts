import { QmpError } from '../../qmp/errors.ts';
import { Qcow2FormatError, Qcow2Image } from './qcow2/image.ts';
import { resolveBackingFilename } from './qcow2/header.ts';
import { Qcow2Corruption, RepairFailure } from './qcow2/corruption.ts';
import { BlockIoError } from '../io-error.ts';
import type { BackingChainDriver, BackingReader, BitmapToStore, BlockDriver, BlockStatus, LoadedBitmap, PersistentBitmapStore, ZeroWriteFlags } from './driver.ts';
import { allocatedBytes } from './file.ts';
import { firstProblem, QCOW2_RULES } from './option-rules.ts';
import type { BlockChildIo } from '../node.ts';
import type { BlockdevOptionsQcow2, ImageInfo, ImageInfoSpecificQCow2 } from '../../schema/generated/qapi-types.ts';
import { EIO, ENOMEDIUM } from '../../errno.ts';

/** The `qcow2` format driver: QEMU's image format over a protocol child, with persistent bitmaps. */
export class Qcow2Driver implements BlockDriver, PersistentBitmapStore, BackingChainDriver {
  readonly format = 'qcow2';
  readonly bitmapStore: PersistentBitmapStore = this;
  readonly backingChain: BackingChainDriver = this;
  private readonly image: Qcow2Image;
  /** After a fatal corruption the node has no driver any more, as in QEMU: every request fails with ENOMEDIUM. */
  private unusable = false;
  private signalledCorruption = false;

  constructor(
    private readonly child: BlockChildIo,
    /** The node's filename: plain, or `json:` once its backing differs from the header's. */
    private readonly filename: () => string,
    options: BlockdevOptionsQcow2,
    /** Whether a node or device of that name exists (a `data-file` reference). */
    nodeExists: (name: string) => boolean,
    /** Sends BLOCK_IMAGE_CORRUPTED. */
    private readonly reportCorruption: (corruption: Qcow2Corruption, fatal: boolean) => void = () => {},
  ) {
    try {
      this.image = Qcow2Image.open(child.byteStore, (image) => firstProblem(QCOW2_RULES, options, { image, nodeExists }));
    } catch (error) {
      if (error instanceof RepairFailure) reportCorruption(error.corruption, true);
      throw asQmpError(error);
    }
  }

  /** The backing file named in the header, '' when there is none. */
  get backingFile(): string {
    return this.image.backingFile;
  }

  get backingFormat(): string | undefined {
    return this.image.backingFormat;
  }

  /** The header's backing file name taken relative to the directory of the image's file, as QEMU resolves it. */
  fullBackingFilename(): string {
    return resolveBackingFilename(String(this.child.imageInfo().filename), this.image.backingFile);
  }

  /** The node below in the backing chain, or none: unallocated clusters read from it. */
  setBacking(backing: BackingReader | undefined): void {
    this.image.setBacking(backing);
  }

  get clusterSize(): number {
    return this.image.clusterSize;
  }

  size(): number {
    return this.image.virtualSize;
  }

  read(offset: number, length: number): Buffer {
    return this.guarded(() => this.image.read(offset, length));
  }

  readInto(offset: number, into: Buffer): Promise<void> {
    if (this.unusable) return Promise.reject(new BlockIoError(ENOMEDIUM));
    return this.image.readInto(offset, into).catch((error: unknown) => {
      throw this.failure(error);
    });
  }

  write(offset: number, data: Buffer): void {
    this.guarded(() => this.image.write(offset, data));
  }

  writeZeroes(offset: number, length: number, flags: ZeroWriteFlags = {}): void {
    this.guarded(() => this.image.writeZeroes(offset, length, flags));
  }

  /** Version 2 images have no zero flag: QEMU's qcow2 offers no zeroing without a fallback on them. */
  zeroesWithoutFallback(): boolean {
    return this.image.version >= 3;
  }

  writeCompressed(offset: number, data: Buffer): void {
    this.guarded(() => this.image.writeCompressed(offset, data));
  }

  discard(offset: number, length: number): void {
    this.guarded(() => this.image.discard(offset, length));
  }

  flush(): void {
    this.guarded(() => this.image.flush());
  }

  blockStatus(offset: number, length: number): BlockStatus {
    return this.guarded(() => this.image.blockStatus(offset, length));
  }

  close(): void {
    if (this.unusable) return;
    this.image.startClosing();
    // QEMU writes back its L2 table cache and then its refcount block cache, each ending with a flush of the file.
    this.closing(['Failed to flush the L2 table cache', 'Failed to flush the refcount block cache'], () => this.image.close());
  }

  /** Whether a fatal corruption took the node's driver away. */
  noMedium(): boolean {
    return this.unusable;
  }

  /**
   * QEMU's qcow2_signal_corruption: one event per node (a later fatal one
   * still comes after a non-fatal one); fatal only on a writable node, which
   * is then marked corrupt on disk and left without a driver.
   */
  private signal(corruption: Qcow2Corruption): void {
    const fatal = !this.image.readOnly;
    if (this.signalledCorruption && !fatal) return;
    this.signalledCorruption = true;
    this.reportCorruption(corruption, fatal);
    if (!fatal) return;
    this.unusable = true;
    this.image.markCorrupt();
  }

  private guarded<T>(operation: () => T): T {
    if (this.unusable) throw new BlockIoError(ENOMEDIUM);
    try {
      return operation();
    } catch (error) {
      throw this.failure(error);
    }
  }

  /** What a failed request throws: a corruption is signalled and fails with EIO. */
  private failure(error: unknown): Error {
    if (!(error instanceof Qcow2Corruption)) return asDriverError(error);
    this.signal(error);
    return new BlockIoError(EIO);
  }

  /**
   * QEMU closes a node whatever it meets on the way: a corruption is
   * signalled, an I/O error only reported on stderr, and the close goes on.
   */
  private closing(failures: string[], operation: () => void): void {
    try {
      operation();
    } catch (error) {
      if (error instanceof Qcow2Corruption) this.signal(error);
      else if (error instanceof BlockIoError) for (const what of failures) process.stderr.write(`qblockd: ${what}: ${error.message}\n`);
      else throw asQmpError(error);
    }
  }

  reopen(readOnly: boolean): void {
    this.guarded(() => this.image.setReadOnly(readOnly));
  }

  resize(size: number, checkStoredBitmaps: (names: string[]) => void): void {
    this.guarded(() => this.image.resize(size, () => checkStoredBitmaps(this.image.storedBitmaps().map((bitmap) => bitmap.name))));
  }

  loadBitmaps(): LoadedBitmap[] {
    return this.image.storedBitmaps().map((stored) => ({
      name: stored.name,
      granularity: stored.granularity,
      inUse: stored.inUse,
      enabled: stored.auto,
      loadInto: (data) => this.guarded(() => this.image.loadBitmap(stored.name, data)),
    }));
  }

  markInUse(): void {
    this.guarded(() => this.image.markBitmapsInUse());
  }

  checkNewBitmap(name: string, granularity: number): string | null {
    return this.image.checkNewPersistentBitmap(name, granularity);
  }

  /** Called on close. */
  storeBitmaps(bitmaps: BitmapToStore[]): void {
    if (this.unusable) return;
    this.image.startClosing();
    this.closing(['Lost persistent bitmaps of a qcow2 node'], () => this.image.storeBitmaps(bitmaps));
  }

  removeBitmap(name: string): void {
    this.guarded(() => this.image.removeBitmap(name));
  }

  imageInfo(): ImageInfo {
    const childInfo = this.child.imageInfo();
    const data: ImageInfoSpecificQCow2 =
      this.image.version === 3
        ? {
            compat: '1.1',
            'compression-type': 'zlib',
            'lazy-refcounts': false,
            bitmaps: this.image.storedBitmaps().map((bitmap) => ({
              flags: [...(bitmap.inUse ? ['in-use' as const] : []), ...(bitmap.auto ? ['auto' as const] : [])],
              name: bitmap.name,
              granularity: bitmap.granularity,
            })),
            'refcount-bits': 16,
            corrupt: this.image.corrupt,
            'extended-l2': false,
          }
        : { compat: '0.10', 'compression-type': 'zlib', 'refcount-bits': 16 };
    if (data.bitmaps?.length === 0) delete data.bitmaps;
    const backing: Pick<ImageInfo, 'backing-filename' | 'full-backing-filename' | 'backing-filename-format'> = {};
    if (this.image.backingFile !== '') {
      backing['backing-filename'] = this.image.backingFile;
      backing['full-backing-filename'] = this.fullBackingFilename();
      if (this.image.backingFormat !== undefined) backing['backing-filename-format'] = this.image.backingFormat;
    }
    return {
      ...backing,
      'virtual-size': this.image.virtualSize,
      filename: this.filename(),
      'cluster-size': this.image.clusterSize,
      format: 'qcow2',
      'actual-size': typeof childInfo.filename === 'string' ? allocatedBytes(childInfo.filename) : 0,
      'format-specific': { type: 'qcow2', data },
      'dirty-flag': this.image.dirty,
    };
  }
}

function asQmpError(error: unknown): QmpError {
  if (error instanceof QmpError) return error;
  if (error instanceof Qcow2FormatError || error instanceof RepairFailure) return new QmpError(error.message);
  return new QmpError(`qcow2: ${(error as Error).message}`);
}

/** A failed request keeps its errno (qemu-io prints it); anything else is a QMP error. */
function asDriverError(error: unknown): Error {
  return error instanceof BlockIoError ? error : asQmpError(error);
}
