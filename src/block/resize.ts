import { QmpError } from '../qmp/errors.ts';
import { MAX_NODE_LENGTH } from './drivers/option-rules.ts';
import { permissionConflict, UNNAMED_BACKEND, type NodeUser } from './permission-conflict.ts';
import type { BlockGraph } from './graph.ts';
import type { BlockNode } from './node.ts';

export interface ResizeRequest {
  device?: string;
  nodeName?: string;
  size: number | bigint;
}

/** What block_resize needs from outside the graph. */
export interface ResizeContext {
  /** A job's target: QEMU's op blocker forbids resizing it. */
  blocked(node: BlockNode): boolean;
  /** A user outside the graph that does not share resizing (an export): QEMU's conflict text, or null. */
  conflict(node: BlockNode): string | null;
}

/**
 * Parents that forbid resizing their child, and as which child: a format node (qcow2,
 * writable or not) and a raw window (an offset or a size) their file, copy-before-write its target,
 * and the filter a backup job puts above its source (its job forbids resizing what it reads) its file.
 */
function unsharedByParent(graph: BlockGraph, parent: BlockNode, node: BlockNode): NodeUser | null {
  const index = parent.children.indexOf(node);
  const name = `node '${parent.nodeName}'`;
  // Asked as if writable: a qcow2 node unshares resizing its file even when it is read-only.
  if (index === 0 && graph.childResize(parent, false) !== undefined) return { name, role: 'file' };
  const filter = parent.driver.format === 'copy-before-write';
  if (filter && index === 1) return { name, role: 'target' };
  if (filter && index === 0 && !parent.monitorOwned) return { name, role: 'file' };
  return null;
}

/**
 * block_resize, in QEMU 7.2's order: the lookup (a device name first, then a node
 * name), the size, the permission to resize, then the resize itself (the node's
 * own checks, its driver, its bitmaps).
 */
export function resizeBlockdev(graph: BlockGraph, request: ResizeRequest, context: ResizeContext): void {
  const node = findTarget(graph, request.device, request.nodeName);
  if (request.size < 0) throw new QmpError("Parameter 'size' expects a >0 size");
  // QEMU prints the device argument as it got it, a null pointer as "(null)".
  if (context.blocked(node)) throw new QmpError(`Device '${request.device ?? '(null)'}' is in use`);
  const conflict = parentConflict(graph, node) ?? context.conflict(node);
  if (conflict) throw new QmpError(conflict);
  if (BigInt(request.size) > MAX_NODE_LENGTH) throw new QmpError(`offset(${request.size}) exceeds maximum(${MAX_NODE_LENGTH})`);
  node.resize(Number(request.size));
}

/** bdrv_lookup_bs(device, node-name): `device` names only BlockBackends (-drive ids). */
function findTarget(graph: BlockGraph, device: string | undefined, nodeName: string | undefined): BlockNode {
  const node = (device !== undefined ? graph.deviceNode(device) : undefined) ?? (nodeName !== undefined ? graph.findNode(nodeName) : undefined);
  if (!node) throw new QmpError(`Cannot find device='${device ?? ''}' nor node-name='${nodeName ?? ''}'`);
  return node;
}

/** block_resize's own BlockBackend requires resizing, which such a parent does not share. */
function parentConflict(graph: BlockGraph, node: BlockNode): string | null {
  for (const parent of graph.allNodes()) {
    const unsharedBy = unsharedByParent(graph, parent, node);
    if (unsharedBy) return permissionConflict(node.nodeName, 'resize', UNNAMED_BACKEND, unsharedBy);
  }
  return null;
}
