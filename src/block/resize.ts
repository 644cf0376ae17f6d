import { QmpError } from '../qmp/errors.ts';
import { permissionConflict, UNNAMED_BACKEND } from './permission-conflict.ts';
import type { BlockGraph } from './graph.ts';
import type { BlockNode } from './node.ts';

export interface ResizeRequest {
  device?: string;
  nodeName?: string;
  size: number | bigint;
}

/** Users outside the graph that forbid resizing a node (an export, a job): QEMU's conflict text, or null. */
export type ExternalResizeConflict = (node: BlockNode) => string | null;

/** Children of copy-before-write, by position: the filter forbids resizing either while it is attached. */
const CBW_CHILD_ROLES = ['file', 'target'] as const;

/**
 * block_resize, in QEMU 7.2's order: the lookup (a device name first, then a node
 * name), the size, the permission to resize, then the resize itself (the node's
 * own checks, its driver, its bitmaps).
 */
export function resizeBlockdev(graph: BlockGraph, request: ResizeRequest, externalConflict: ExternalResizeConflict): void {
  const node = findTarget(graph, request.device, request.nodeName);
  if (request.size < 0) throw new QmpError("Parameter 'size' expects a >0 size");
  const conflict = graph.resizeConflict(node) ?? filterConflict(graph, node) ?? externalConflict(node);
  if (conflict) throw new QmpError(conflict);
  node.resize(Number(request.size));
}

/** bdrv_lookup_bs(device, node-name): `device` names only BlockBackends (-drive ids). */
function findTarget(graph: BlockGraph, device: string | undefined, nodeName: string | undefined): BlockNode {
  const node = (device !== undefined ? graph.deviceNode(device) : undefined) ?? (nodeName !== undefined ? graph.findNode(nodeName) : undefined);
  if (!node) throw new QmpError(`Cannot find device='${device ?? ''}' nor node-name='${nodeName ?? ''}'`);
  return node;
}

function filterConflict(graph: BlockGraph, node: BlockNode): string | null {
  for (const parent of graph.allNodes()) {
    if (parent.driver.format !== 'copy-before-write') continue;
    const role = CBW_CHILD_ROLES[parent.children.indexOf(node)];
    if (role) return permissionConflict(node.nodeName, 'resize', UNNAMED_BACKEND, { name: `node '${parent.nodeName}'`, role });
  }
  return null;
}
