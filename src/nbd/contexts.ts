import type { DirtyBitmap } from '../block/bitmap/dirty-bitmap.ts';
import { statusRuns } from '../block/block-status.ts';
import type { BlockStatus } from '../block/drivers/driver.ts';
import type { BlockNode } from '../block/node.ts';
import { DIRTY_FLAG, ExtentList, StateFlag, type Extent } from './protocol.ts';

/**
 * The meta contexts an export offers, with QEMU's context ids: base:allocation
 * is 0, qemu:allocation-depth 1, and the export's bitmaps 2, 3, ... in the
 * order block-export-add named them.
 */
export interface MetaContext {
  readonly id: number;
  readonly name: string;
  /** Extents from `offset` over at most `length` bytes, at most `limit` of them. */
  extents(offset: number, length: number, limit: number): Extent[];
}

const BASE_ALLOCATION_ID = 0;
const ALLOCATION_DEPTH_ID = 1;
const FIRST_BITMAP_ID = 2;

export interface ExportedContent {
  node: BlockNode;
  allocationDepth: boolean;
  bitmaps: DirtyBitmap[];
}

export function exportContexts(content: ExportedContent): MetaContext[] {
  const contexts: MetaContext[] = [baseAllocation(content.node)];
  if (content.allocationDepth) contexts.push(allocationDepth(content.node));
  content.bitmaps.forEach((bitmap, index) => contexts.push(dirtyBitmap(bitmap, FIRST_BITMAP_ID + index)));
  return contexts;
}

function statusExtents(node: BlockNode, offset: number, length: number, limit: number, flagsOf: (status: BlockStatus) => number): Extent[] {
  const list = new ExtentList(limit);
  for (const run of statusRuns(node, offset, length)) {
    if (!list.add(run.length, flagsOf(run))) break;
  }
  return list.extents;
}

function baseAllocation(node: BlockNode): MetaContext {
  return {
    id: BASE_ALLOCATION_ID,
    name: 'base:allocation',
    extents: (offset, length, limit) =>
      statusExtents(node, offset, length, limit, (status) => (status.data ? 0 : StateFlag.HOLE) | (status.zero ? StateFlag.ZERO : 0)),
  };
}

/** Depth in the backing chain where the data lives: 0 unallocated, 1 this node (qblockd has no backing chains). */
function allocationDepth(node: BlockNode): MetaContext {
  return {
    id: ALLOCATION_DEPTH_ID,
    name: 'qemu:allocation-depth',
    extents: (offset, length, limit) => statusExtents(node, offset, length, limit, (status) => (status.allocated ? 1 : 0)),
  };
}

function dirtyBitmap(bitmap: DirtyBitmap, id: number): MetaContext {
  return {
    id,
    name: `qemu:dirty-bitmap:${bitmap.name}`,
    extents: (offset, length, limit) => bitmapExtents(bitmap, offset, length, limit),
  };
}

function bitmapExtents(bitmap: DirtyBitmap, offset: number, length: number, limit: number): Extent[] {
  const { data } = bitmap;
  const granularity = data.granularity;
  const end = offset + length;
  const list = new ExtentList(limit);
  let at = offset;
  data.forEachRun(Math.floor(offset / granularity), Math.ceil(end / granularity), (_first, last, dirty) => {
    const areaEnd = Math.min(last * granularity, end);
    const added = list.add(areaEnd - at, dirty ? DIRTY_FLAG : 0);
    at = areaEnd;
    return !added;
  });
  list.add(end - at, 0);
  return list.extents;
}
