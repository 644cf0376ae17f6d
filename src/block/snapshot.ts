import { QmpError } from '../qmp/errors.ts';
import type { PreparedAction } from './bitmap/actions.ts';
import type { BlockGraph } from './graph.ts';
import type { JobList } from './jobs/job-list.ts';
import type { BlockNode } from './node.ts';
import { switchReadOnly } from './reopen.ts';
import type { BlockdevSnapshot, BlockdevSnapshotSync } from '../schema/generated/qapi-types.ts';

/** What blockdev-snapshot-sync needs from above the block layer: an image file made for the overlay. */
export type OverlayImageCreator = (path: string, format: string, size: number, backing: { file: string; format: string }) => void;

/** Moves every user of a node that QEMU's bdrv_replace_node moves (devices, parent nodes, guest disks, exports) to another. */
export type ParentMover = (from: BlockNode, to: BlockNode) => void;

/**
 * blockdev-snapshot: the overlay (a node the user added, without a backing)
 * takes `node` as its backing and every device on `node` moves to it; at
 * commit `node` goes read-only, as QEMU reopens it.
 */
export function prepareSnapshot(graph: BlockGraph, jobs: JobList, args: BlockdevSnapshot, moveParents: ParentMover): PreparedAction {
  const old = graph.lookup(args.node, args.node);
  return drainedUntilClean(jobs, old, () => {
    checkSnapshotSource(graph, old);
    return appendOverlay(graph, old, graph.lookup(args.overlay, args.overlay), moveParents);
  });
}

/**
 * blockdev-snapshot-sync: as blockdev-snapshot, over a qcow2 overlay it
 * creates first (mode absolute-paths, naming `node`'s filename and format as
 * its backing) or finds (mode existing), opened like `node` but without a backing.
 */
export function prepareSnapshotSync(graph: BlockGraph, jobs: JobList, args: BlockdevSnapshotSync, createImage: OverlayImageCreator, moveParents: ParentMover): PreparedAction {
  const old = graph.lookup(args.device, args['node-name']);
  return drainedUntilClean(jobs, old, () => prepareOverlayImage(graph, old, args, createImage, moveParents));
}

function prepareOverlayImage(graph: BlockGraph, old: BlockNode, args: BlockdevSnapshotSync, createImage: OverlayImageCreator, moveParents: ParentMover): PreparedAction {
  checkSnapshotSource(graph, old);
  const format = args.format ?? 'qcow2';
  const overlayName = args['snapshot-node-name'];
  if (args['node-name'] !== undefined && overlayName === undefined) throw new QmpError('New overlay node-name missing');
  if (overlayName !== undefined && graph.exists(overlayName)) throw new QmpError('New overlay node-name already in use');
  if ((args.mode ?? 'absolute-paths') !== 'existing') {
    createImage(args['snapshot-file'], format, old.size(), { file: graph.filenameOf(old), format: old.driver.format });
  }
  const overlay = graph.openImplicit(args['snapshot-file'], format, { withoutBacking: true, nodeName: overlayName, readOnly: old.readOnly });
  try {
    return appendOverlay(graph, old, overlay, moveParents);
  } catch (error) {
    graph.closeImplicit(overlay);
    throw error;
  }
}

/**
 * QEMU drains the node being snapshotted from the moment it is found until the
 * action's clean, whether the rest of prepare succeeds or not: a job on it
 * pauses and resumes once more.
 */
function drainedUntilClean(jobs: JobList, old: BlockNode, prepare: () => PreparedAction): PreparedAction {
  jobs.drainBegin(old);
  let action: PreparedAction;
  try {
    action = prepare();
  } catch (error) {
    jobs.drainEnd(old);
    throw error;
  }
  return {
    ...action,
    clean: () => {
      jobs.drainEnd(old);
      action.clean?.();
    },
  };
}

function checkSnapshotSource(graph: BlockGraph, old: BlockNode): void {
  const blocker = graph.backingBlocker(old);
  if (blocker) throw new QmpError(blocker);
  if (!old.readOnly) old.flush();
}

/** QEMU's checks on the overlay, in its order, then bdrv_append; abort takes it back. */
function appendOverlay(graph: BlockGraph, old: BlockNode, overlay: BlockNode, moveParents: ParentMover): PreparedAction {
  if ([...overlay.users].some((user) => !user.startsWith('job '))) throw new QmpError('The overlay is already in use');
  if (overlay.driver.isFilter) throw new QmpError('Filters cannot be used as overlays');
  if (overlay.backing) throw new QmpError('The overlay already has a backing image');
  if (!overlay.driver.backingChain) throw new QmpError('The overlay does not support backing images');
  graph.attachBacking(overlay, old);
  moveParents(old, overlay);
  return {
    commit: () => reopenReadOnly(graph, old),
    abort: () => {
      moveParents(overlay, old);
      graph.detachBacking(overlay);
    },
    // An overlay the action opened itself and nothing took over (no device was on the node) goes again, as in QEMU.
    clean: () => {
      if (!overlay.monitorOwned && overlay.users.size === 0) graph.closeImplicit(overlay);
    },
  };
}

/**
 * The old active node under its new overlay, as QEMU's reopen leaves it:
 * read-only with its persistent bitmaps stored (in-use cleared) and readonly
 * from now on, its image lock downgraded, and the children it defined itself
 * read-only too.
 */
function reopenReadOnly(graph: BlockGraph, node: BlockNode): void {
  if (node.readOnly) return;
  const lock = graph.claimedLock(node);
  lock?.release('write');
  lock?.claim('read');
  switchReadOnly(node, true);
  for (const child of node.children) if (!child.monitorOwned) switchReadOnly(child, true);
}
