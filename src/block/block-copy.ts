import type { BlockNode } from './node.ts';

const DEFAULT_CLUSTER_SIZE = 65536;
const NO_CLUSTER_SIZE_WARNING =
  "warning: The target block device doesn't provide information about the block size and it doesn't have a backing file. " +
  `The default block size of ${DEFAULT_CLUSTER_SIZE} bytes is used. If the actual block size of the target exceeds this default, the backup may be unusable`;

/**
 * The unit copy-before-write copies into `target` in (QEMU's block_copy_calculate_cluster_size):
 * 64 KiB, or the target's cluster size when larger. A target that reports none gets the default
 * and QEMU's warning; the warning spares targets with a backing file, but every qblockd driver
 * that can have one (qcow2) reports its cluster size.
 */
export function blockCopyClusterSize(target: BlockNode, warn: (line: string) => void): number {
  const reported = target.reportedClusterSize();
  if (reported === undefined) {
    warn(NO_CLUSTER_SIZE_WARNING);
    return DEFAULT_CLUSTER_SIZE;
  }
  return Math.max(DEFAULT_CLUSTER_SIZE, reported);
}
