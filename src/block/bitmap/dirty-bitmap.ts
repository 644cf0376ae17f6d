import { BitmapData } from './bitmap-data.ts';
import type { BitmapState } from './permissions.ts';
import type { BlockDirtyInfo } from '../../schema/generated/qapi-types.ts';


/** A named dirty bitmap on a node: its bits plus the states QMP reports and checks. */
export class DirtyBitmap implements BitmapState {
  enabled: boolean;
  persistent: boolean;
  /** Set when the node goes read-only under a snapshot; a readonly bitmap is never stored. */
  readonly: boolean;
  readonly inconsistent: boolean;
  /** Set while a transaction has removed the bitmap but may still roll back. */
  skipStore = false;
  /** While a job uses the bitmap, new writes land here instead (block/bitmap/successor.ts). */
  successor: DirtyBitmap | undefined;
  private readonly holders = new Set<object>();

  constructor(
    readonly name: string,
    readonly data: BitmapData,
    options: { enabled: boolean; persistent: boolean; readonly?: boolean; inconsistent?: boolean },
  ) {
    this.enabled = options.enabled;
    this.persistent = options.persistent;
    this.readonly = options.readonly ?? false;
    this.inconsistent = options.inconsistent ?? false;
  }

  get granularity(): number {
    return this.data.granularity;
  }

  /** Jobs' internal bitmaps have no name and are never listed by name. */
  get anonymous(): boolean {
    return this.name === '';
  }

  /** Whether guest writes are recorded here or, while frozen by a job, in its successor. */
  get recording(): boolean {
    return (this.enabled && !this.inconsistent) || (this.successor?.recording ?? false);
  }

  /** Whether a guest write marks this bitmap's own bits. */
  get marksWrites(): boolean {
    return this.enabled && !this.inconsistent;
  }

  isBusy(): boolean {
    return this.holders.size > 0;
  }

  /** An export, a job or a pending transaction action holds the bitmap. */
  acquire(holder: object): void {
    this.holders.add(holder);
  }

  release(holder: object): void {
    this.holders.delete(holder);
  }

  info(): BlockDirtyInfo {
    // Member by member, in QEMU's order: a spread of the optional name made each reply object
    // a slow one, and replies build one per bitmap.
    const info = {} as BlockDirtyInfo;
    if (!this.anonymous) info.name = this.name;
    info.count = this.data.dirtyBytes();
    info.granularity = this.granularity;
    info.recording = this.recording;
    info.busy = this.isBusy();
    info.persistent = this.persistent;
    if (this.inconsistent) info.inconsistent = true;
    return info;
  }
}
