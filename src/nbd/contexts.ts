import type { DirtyBitmap } from '../block/bitmap/dirty-bitmap.ts';
import { runsOf, statusRuns } from '../block/block-status.ts';
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
  const contexts: MetaContext[] = [baseAllocation(content)];
  if (content.allocationDepth) contexts.push(allocationDepth(content));
  content.bitmaps.forEach((bitmap, index) => contexts.push(dirtyBitmap(bitmap, FIRST_BITMAP_ID + index)));
  return contexts;
}

/** Extents from runs of one status each, `flagsOf` giving a run's NBD flags. */
function runExtents<Run extends { length: number }>(runs: Iterable<Run>, limit: number, flagsOf: (run: Run) => number): Extent[] {
  const list = new ExtentList(limit);
  for (const run of runs) {
    if (!list.add(run.length, flagsOf(run))) break;
  }
  return list.extents;
}

/** The export's node is looked up at each request: a snapshot can move the export to its overlay. */
function baseAllocation(content: ExportedContent): MetaContext {
  return {
    id: BASE_ALLOCATION_ID,
    name: 'base:allocation',
    extents: (offset, length, limit) =>
      runExtents(statusRuns(content.node, offset, length), limit, (status) => (status.data ? 0 : StateFlag.HOLE) | (status.zero ? StateFlag.ZERO : 0)),
  };
}

/** Depth in the backing chain where the data lives: 0 unallocated, 1 this node, 2 its backing, ... */
function allocationDepth(content: ExportedContent): MetaContext {
  return {
    id: ALLOCATION_DEPTH_ID,
    name: 'qemu:allocation-depth',
    extents: (offset, length, limit) =>
      runExtents(runsOf((at, bytes) => content.node.allocationDepth(at, bytes), offset, length), limit, (status) => status.depth),
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
