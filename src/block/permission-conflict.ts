/** One side of a permission conflict: who uses the node, and as which kind of child. */
export interface NodeUser {
  /** As QEMU names it: "node 'q1'", "block device 'd0'", or an unnamed block device. */
  name: string;
  role: 'root' | 'file' | 'backing' | 'target';
}

/** A BlockBackend of no name (qemu-io's own, an export's), as the root user of its node. */
export const UNNAMED_BACKEND: NodeUser = { name: 'an unnamed block device', role: 'root' };

/** A node above, using the node as its `file` child. */
export function fileChildUser(parentName: string): NodeUser {
  return { name: `node '${parentName}'`, role: 'file' };
}

/** QEMU's refusal when one user of `node` requires a permission that another does not share. */
export function permissionConflict(node: string, permission: 'write' | 'resize' | 'write, resize', requiredBy: NodeUser, unsharedBy: NodeUser): string {
  return (
    `Permission conflict on node '${node}': permissions '${permission}' are both required by ${requiredBy.name} ` +
    `(uses node '${node}' as '${requiredBy.role}' child) and unshared by ${unsharedBy.name} (uses node '${node}' as '${unsharedBy.role}' child).`
  );
}
