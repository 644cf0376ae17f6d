import { QmpError } from '../../qmp/errors.ts';
import type { BlockGraph } from '../graph.ts';
import type { BlockNode } from '../node.ts';
import { BitmapData } from './bitmap-data.ts';
import { DirtyBitmap } from './dirty-bitmap.ts';
import { checkBitmapPermission } from './permissions.ts';
import type { BlockDirtyBitmap, BlockDirtyBitmapAdd, BlockDirtyBitmapMerge } from '../../schema/generated/qapi-types.ts';

/** An applied change that can still be made final or undone. */
export interface PreparedAction {
  commit(): void;
  abort(): void;
  /** After every action committed or aborted (a backup ends its drain here). */
  clean?(): void;
}

const NOTHING_TO_UNDO: PreparedAction = { commit() {}, abort() {} };

const NAME_MAX = 1023;
const MIN_GRANULARITY = 512;
const DEFAULT_GRANULARITY = 65536;

/** Finds an existing bitmap, with the errors of QEMU's block_dirty_bitmap_lookup. */
export function lookupBitmap(graph: BlockGraph, nodeName: string, name: string): { node: BlockNode; bitmap: DirtyBitmap } {
  const node = graph.findBitmapNode(nodeName);
  const bitmap = node.findBitmap(name);
  if (!bitmap) throw new QmpError(`Dirty bitmap '${name}' not found`);
  return { node, bitmap };
}

/** QEMU's default: the node's cluster size clamped to 4 KiB..64 KiB, else 64 KiB. */
export function defaultGranularity(node: BlockNode): number {
  const clusterSize = node.driver.clusterSize;
  if (!clusterSize) return DEFAULT_GRANULARITY;
  return Math.min(DEFAULT_GRANULARITY, Math.max(4096, clusterSize));
}

function isPowerOfTwo(value: number): boolean {
  return Number.isInteger(value) && value > 0 && 2 ** Math.round(Math.log2(value)) === value;
}

export function prepareAdd(graph: BlockGraph, args: BlockDirtyBitmapAdd): PreparedAction {
  if (args.name === '') throw new QmpError('Bitmap name cannot be empty');
  const node = graph.findDeviceOrNode(args.node);
  if (args.granularity !== undefined && (args.granularity < MIN_GRANULARITY || !isPowerOfTwo(args.granularity))) {
    throw new QmpError('Granularity must be power of 2 and at least 512');
  }
  const granularity = args.granularity ?? defaultGranularity(node);
  const persistent = args.persistent ?? false;
  if (persistent) {
    const store = node.driver.bitmapStore;
    const where = graph.deviceNameOf(node) ?? node.nodeName;
    if (!store) throw new QmpError(`Can't store persistent bitmaps to ${where}: Operation not supported`);
    if (node.driver.noMedium?.()) throw new QmpError(`Can't store persistent bitmaps to ${where}: No medium found`);
    const refusal = store.checkNewBitmap(args.name, granularity);
    if (refusal) throw new QmpError(`Can't make bitmap '${args.name}' persistent in '${where}': ${refusal}`);
  }
  if (node.findBitmap(args.name)) throw new QmpError(`Bitmap already exists: ${args.name}`);
  if (Buffer.byteLength(args.name) > NAME_MAX) throw new QmpError(`Bitmap name too long: ${args.name}`);
  if (node.driver.noMedium?.()) throw new QmpError('could not get length of device: No medium found');
  const bitmap = new DirtyBitmap(args.name, new BitmapData({ diskSize: node.size(), granularity }), {
    enabled: !(args.disabled ?? false),
    persistent,
  });
  node.addBitmap(bitmap);
  return { commit() {}, abort: () => node.dropBitmap(bitmap) };
}

export function prepareRemove(graph: BlockGraph, args: BlockDirtyBitmap): PreparedAction {
  const { node, bitmap } = lookupBitmap(graph, args.node, args.name);
  checkBitmapPermission(bitmap, 'remove');
  if (bitmap.persistent) node.driver.bitmapStore?.removeBitmap(bitmap.name);
  // Until commit the bitmap stays, busy, so later actions of a transaction cannot touch it.
  const holder = {};
  bitmap.skipStore = true;
  bitmap.acquire(holder);
  return {
    commit() {
      bitmap.release(holder);
      node.dropBitmap(bitmap);
    },
    abort() {
      bitmap.skipStore = false;
      bitmap.release(holder);
    },
  };
}

export function prepareClear(graph: BlockGraph, args: BlockDirtyBitmap, undoable: boolean): PreparedAction {
  const { bitmap } = lookupBitmap(graph, args.node, args.name);
  checkBitmapPermission(bitmap, 'clear');
  return changeBits(bitmap, undoable, () => bitmap.data.clearAll());
}

export function prepareSetEnabled(graph: BlockGraph, args: BlockDirtyBitmap, enabled: boolean): PreparedAction {
  const { bitmap } = lookupBitmap(graph, args.node, args.name);
  checkBitmapPermission(bitmap, enabled ? 'enable' : 'disable');
  const wasEnabled = bitmap.enabled;
  bitmap.enabled = enabled;
  return {
    commit() {},
    abort() {
      bitmap.enabled = wasEnabled;
    },
  };
}

/**
 * QEMU 7.2 merges source by source into the target: the target is looked up
 * first; then for each source in order (a plain name is a bitmap of the target's
 * node) the source is looked up, then the target's permission, the source's and
 * the sizes are checked. So a busy target hides every later source's error but
 * not a missing first source (iotest 028).
 */
export function prepareMerge(graph: BlockGraph, args: BlockDirtyBitmapMerge, undoable: boolean): PreparedAction {
  const { node, bitmap: target } = lookupBitmap(graph, args.node, args.target);
  if (args.bitmaps.length === 0) return NOTHING_TO_UNDO;
  const sources = args.bitmaps.map((source) => {
    const bitmap =
      typeof source === 'string' ? node.findBitmap(source) : lookupBitmap(graph, source.node, source.name).bitmap;
    if (!bitmap) throw new QmpError(`Dirty bitmap '${source as string}' not found`);
    checkBitmapPermission(target, 'mergeTarget');
    checkBitmapPermission(bitmap, 'mergeSource');
    if (bitmap.data.diskSize !== target.data.diskSize) {
      throw new QmpError(
        `Bitmaps are of different sizes (destination size is ${target.data.diskSize}, source size is ${bitmap.data.diskSize}) and can't be merged`,
      );
    }
    return bitmap;
  });
  return changeBits(target, undoable, () => {
    for (const source of sources) target.data.mergeFrom(source.data);
  });
}

/**
 * Changes a bitmap's bits. Only a transaction can roll back (`undoable`): then the
 * bitmap records the original of each page it changes, so an abort restores them
 * exactly; a plain command records nothing.
 */
function changeBits(bitmap: DirtyBitmap, undoable: boolean, change: () => void): PreparedAction {
  if (!undoable) {
    change();
    return NOTHING_TO_UNDO;
  }
  const undo = bitmap.data.recordUndo();
  try {
    change();
  } catch (error) {
    bitmap.data.rollBack(undo);
    throw error;
  }
  return {
    commit: () => bitmap.data.forgetUndo(undo),
    abort: () => bitmap.data.rollBack(undo),
  };
}
