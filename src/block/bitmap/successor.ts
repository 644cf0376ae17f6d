import type { BlockNode } from '../node.ts';
import { BitmapData } from './bitmap-data.ts';
import { DirtyBitmap } from './dirty-bitmap.ts';

export type BitmapSyncMode = 'on-success' | 'never' | 'always';
export type JobOutcome = 'success' | 'failure';

/**
 * A job freezes a bitmap: the bitmap becomes busy and stops recording, and an
 * unnamed successor on the same node records the guest writes made meanwhile.
 * When the job ends the pair is resolved in one of two ways:
 * - abdicate: the bitmap's bits become the successor's (the copied bits are
 *   dropped, the new writes kept);
 * - reclaim: the successor's bits are merged back (nothing is lost).
 * With `always`, a failed job abdicates and then merges back what it did not copy.
 */
export const SUCCESSOR_OUTCOMES: Record<BitmapSyncMode, Record<JobOutcome, { resolve: 'abdicate' | 'reclaim'; mergeUncopied: boolean }>> = {
  'on-success': { success: { resolve: 'abdicate', mergeUncopied: false }, failure: { resolve: 'reclaim', mergeUncopied: false } },
  never: { success: { resolve: 'reclaim', mergeUncopied: false }, failure: { resolve: 'reclaim', mergeUncopied: false } },
  always: { success: { resolve: 'abdicate', mergeUncopied: false }, failure: { resolve: 'abdicate', mergeUncopied: true } },
};

/** The job side of a frozen bitmap. */
export class FrozenBitmap {
  private readonly successor: DirtyBitmap;

  constructor(
    private readonly node: BlockNode,
    readonly bitmap: DirtyBitmap,
  ) {
    this.successor = new DirtyBitmap('', new BitmapData({ diskSize: bitmap.data.diskSize, granularity: bitmap.granularity }), {
      enabled: bitmap.enabled,
      persistent: false,
    });
    bitmap.enabled = false;
    bitmap.successor = this.successor;
    bitmap.acquire(this);
    node.addBitmap(this.successor);
  }

  /** Ends the freeze per `mode` and `outcome`; `uncopied` holds what the job did not copy. */
  resolve(mode: BitmapSyncMode, outcome: JobOutcome, uncopied: BitmapData): void {
    const rule = SUCCESSOR_OUTCOMES[mode][outcome];
    const { bitmap, successor } = this;
    if (rule.resolve === 'abdicate') bitmap.data.restoreFrom(successor.data);
    else bitmap.data.mergeFrom(successor.data);
    if (rule.mergeUncopied) bitmap.data.mergeFrom(uncopied);
    bitmap.enabled = successor.enabled;
    bitmap.successor = undefined;
    bitmap.release(this);
    this.node.dropBitmap(successor);
  }
}
