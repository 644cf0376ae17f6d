import { EXT_BACKING_FORMAT, serializeHeader, type Qcow2Header } from './header.ts';

const CLUSTER_BITS = 16;
const REFCOUNT_ORDER = 4;
/** QEMU 7.2 writes a 112-byte header: the v3 fields plus the compression type, padded. */
const HEADER_LENGTH = 112;

/** An overlay's backing file as its header names it (qemu-img create -b FILE -F FORMAT). */
export interface BackingFileName {
  file: string;
  format: string;
}

/**
 * The bytes of an empty qcow2 v3 image as `qemu-img create -f qcow2` lays it
 * out: header, refcount table, one refcount block, the L1 table.
 */
export function emptyQcow2Image(size: number, backing?: BackingFileName): Buffer {
  const clusterSize = 1 << CLUSTER_BITS;
  const l2Entries = clusterSize / 8;
  const l1Size = Math.ceil(size / (clusterSize * l2Entries));
  const l1Clusters = Math.max(1, Math.ceil((l1Size * 8) / clusterSize));
  const refcountTableOffset = clusterSize;
  const refcountBlockOffset = 2 * clusterSize;
  const l1TableOffset = 3 * clusterSize;
  const totalClusters = 3 + l1Clusters;
  const header: Qcow2Header = {
    version: 3,
    clusterBits: CLUSTER_BITS,
    size,
    cryptMethod: 0,
    l1Size,
    l1TableOffset,
    refcountTableOffset,
    refcountTableClusters: 1,
    nbSnapshots: 0,
    snapshotsOffset: 0,
    incompatibleFeatures: 0n,
    compatibleFeatures: 0n,
    autoclearFeatures: 0n,
    refcountOrder: REFCOUNT_ORDER,
    headerLength: HEADER_LENGTH,
    extraHeader: Buffer.alloc(HEADER_LENGTH - 104),
    extensions: backing ? [{ type: EXT_BACKING_FORMAT, data: Buffer.from(backing.format, 'latin1') }] : [],
    backingFile: backing?.file ?? '',
  };
  const image = Buffer.alloc(totalClusters * clusterSize);
  serializeHeader(header, clusterSize).copy(image, 0);
  image.writeBigUInt64BE(BigInt(refcountBlockOffset), refcountTableOffset);
  for (let cluster = 0; cluster < totalClusters; cluster++) image.writeUInt16BE(1, refcountBlockOffset + cluster * 2);
  return image;
}
