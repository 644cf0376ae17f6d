export const QCOW2_CLUSTER = 65536;

/** Byte offsets of the qcow2 header fields (docs/interop/qcow2.txt), for tests that edit them. */
export const QCOW2_HEADER = {
  magic: 0, version: 4, backingFileOffset: 8, backingFileSize: 16, clusterBits: 20, size: 24,
  cryptMethod: 32, l1Size: 36, l1TableOffset: 40, refcountTableOffset: 48, refcountTableClusters: 56,
  nbSnapshots: 60, snapshotsOffset: 64, incompatibleFeatures: 72, compatibleFeatures: 80,
  autoclearFeatures: 88, refcountOrder: 96, headerLength: 100,
} as const;

/**
 * A fresh qcow2 image built from docs/interop/qcow2.txt alone, independently of
 * qblockd's parser: header, refcount table, one refcount block, L1 table.
 */
export function buildQcow2Image(options: { virtualSize?: number; version?: 2 | 3; incompatible?: bigint; magic?: number } = {}): Buffer {
  const CLUSTER = QCOW2_CLUSTER;
  const virtualSize = options.virtualSize ?? 64 << 20;
  const version = options.version ?? 3;
  const image = Buffer.alloc(4 * CLUSTER);
  const h = QCOW2_HEADER;
  image.writeUInt32BE(options.magic ?? 0x514649fb, h.magic);
  image.writeUInt32BE(version, h.version);
  image.writeUInt32BE(16, h.clusterBits);
  image.writeBigUInt64BE(BigInt(virtualSize), h.size);
  image.writeUInt32BE(Math.ceil(virtualSize / (CLUSTER * (CLUSTER / 8))), h.l1Size);
  image.writeBigUInt64BE(BigInt(3 * CLUSTER), h.l1TableOffset);
  image.writeBigUInt64BE(BigInt(1 * CLUSTER), h.refcountTableOffset);
  image.writeUInt32BE(1, h.refcountTableClusters);
  if (version === 3) {
    image.writeBigUInt64BE(options.incompatible ?? 0n, h.incompatibleFeatures);
    image.writeUInt32BE(4, h.refcountOrder); // 16-bit refcounts
    image.writeUInt32BE(104, h.headerLength);
  }
  image.writeBigUInt64BE(BigInt(2 * CLUSTER), CLUSTER); // refcount table -> block at cluster 2
  for (let cluster = 0; cluster < 4; cluster++) image.writeUInt16BE(1, 2 * CLUSTER + cluster * 2);
  return image;
}
