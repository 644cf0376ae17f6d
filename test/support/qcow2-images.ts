import fs from 'node:fs';
import path from 'node:path';

/**
 * qcow2 images built from docs/interop/qcow2.txt alone, independently of the
 * parser under test, and the hostile variants of their header that QEMU 7.2
 * refuses, each with the exact error text QEMU 7.2 gave for it
 * (blockdev-add driver=qcow2 over a file node, read-write).
 */

export const CLUSTER = 65536;

/** Header, refcount table (cluster 1), one refcount block (cluster 2), L1 table (cluster 3). */
export function buildImage(options: { virtualSize?: number; version?: 2 | 3; incompatible?: bigint; magic?: number } = {}): Buffer {
  const virtualSize = options.virtualSize ?? 64 << 20;
  const version = options.version ?? 3;
  const image = Buffer.alloc(4 * CLUSTER);
  const header = image;
  header.writeUInt32BE(options.magic ?? 0x514649fb, 0);
  header.writeUInt32BE(version, 4);
  header.writeUInt32BE(16, 20); // cluster_bits
  header.writeBigUInt64BE(BigInt(virtualSize), 24);
  header.writeUInt32BE(Math.ceil(virtualSize / (CLUSTER * (CLUSTER / 8))), 36); // l1_size
  header.writeBigUInt64BE(BigInt(3 * CLUSTER), 40); // l1_table_offset
  header.writeBigUInt64BE(BigInt(1 * CLUSTER), 48); // refcount_table_offset
  header.writeUInt32BE(1, 56); // refcount_table_clusters
  if (version === 3) {
    header.writeBigUInt64BE(options.incompatible ?? 0n, 72);
    header.writeUInt32BE(4, 96); // refcount_order: 16-bit refcounts
    header.writeUInt32BE(104, 100); // header_length
  }
  image.writeBigUInt64BE(BigInt(2 * CLUSTER), CLUSTER); // refcount table -> block at cluster 2
  for (let cluster = 0; cluster < 4; cluster++) image.writeUInt16BE(1, 2 * CLUSTER + cluster * 2);
  return image;
}

/** Header field offsets (docs/interop/qcow2.txt). */
export const FIELD = {
  magic: [0, 4],
  version: [4, 4],
  backingFileOffset: [8, 8],
  backingFileSize: [16, 4],
  clusterBits: [20, 4],
  size: [24, 8],
  cryptMethod: [32, 4],
  l1Size: [36, 4],
  l1TableOffset: [40, 8],
  refcountTableOffset: [48, 8],
  refcountTableClusters: [56, 4],
  nbSnapshots: [60, 4],
  snapshotsOffset: [64, 8],
  incompatibleFeatures: [72, 8],
  compatibleFeatures: [80, 8],
  autoclearFeatures: [88, 8],
  refcountOrder: [96, 4],
  headerLength: [100, 4],
} as const;

export type Field = keyof typeof FIELD;

export function setHeaderField(image: Buffer, field: Field, value: number | bigint): void {
  const [offset, width] = FIELD[field];
  if (width === 8) image.writeBigUInt64BE(BigInt(value), offset);
  else image.writeUInt32BE(Number(value), offset);
}

/** Writes header extensions from offset 104 (after a 104-byte header), then the end marker. */
function extensions(image: Buffer, list: Array<{ type: number; data: Buffer; length?: number }>): void {
  let offset = 104;
  for (const extension of list) {
    image.writeUInt32BE(extension.type, offset);
    image.writeUInt32BE(extension.length ?? extension.data.length, offset + 4);
    extension.data.copy(image, offset + 8);
    offset += 8 + Math.ceil(extension.data.length / 8) * 8;
  }
  image.writeUInt32BE(0, offset);
  image.writeUInt32BE(0, offset + 4);
}

const EXT_BITMAPS = 0x23852875;
const EXT_CRYPTO = 0x0537be77;
const AUTOCLEAR_BITMAPS = 1n;

function bitmapsExtension(values: { count?: number; reserved?: number; directorySize?: bigint; directoryOffset?: bigint }): Buffer {
  const data = Buffer.alloc(24);
  data.writeUInt32BE(values.count ?? 1, 0);
  data.writeUInt32BE(values.reserved ?? 0, 4);
  data.writeBigUInt64BE(values.directorySize ?? 40n, 8);
  data.writeBigUInt64BE(values.directoryOffset ?? BigInt(4 * CLUSTER), 16);
  return data;
}

/** An image whose autoclear bit vouches for the given bitmaps extension. */
function withBitmapsExtension(data: Buffer): (image: Buffer) => void {
  return (image) => {
    setHeaderField(image, 'autoclearFeatures', AUTOCLEAR_BITMAPS);
    extensions(image, [{ type: EXT_BITMAPS, data }]);
  };
}

export interface HostileHeader {
  name: string;
  /** Changes a fresh buildImage() (64 MiB, version 3). */
  mutate(image: Buffer): void;
  /** QEMU 7.2's blockdev-add error text. */
  qemuError: string;
}

export const HOSTILE_HEADERS: HostileHeader[] = [
  { name: 'bad magic', mutate: (image) => setHeaderField(image, 'magic', 0x12345678), qemuError: 'Image is not in qcow2 format' },
  { name: 'version 1', mutate: (image) => setHeaderField(image, 'version', 1), qemuError: 'Unsupported qcow2 version 1' },
  { name: 'version 4', mutate: (image) => setHeaderField(image, 'version', 4), qemuError: 'Unsupported qcow2 version 4' },
  { name: 'cluster_bits 8', mutate: (image) => setHeaderField(image, 'clusterBits', 8), qemuError: 'Unsupported cluster size: 2^8' },
  { name: 'cluster_bits 22', mutate: (image) => setHeaderField(image, 'clusterBits', 22), qemuError: 'Unsupported cluster size: 2^22' },
  { name: 'header_length below 104', mutate: (image) => setHeaderField(image, 'headerLength', 100), qemuError: 'qcow2 header too short' },
  { name: 'header_length beyond the cluster', mutate: (image) => setHeaderField(image, 'headerLength', CLUSTER + 8), qemuError: 'qcow2 header exceeds cluster size' },
  { name: 'backing file offset beyond the cluster', mutate: (image) => setHeaderField(image, 'backingFileOffset', 2 * CLUSTER), qemuError: 'Invalid backing file offset' },
  {
    name: 'backing file name too long',
    mutate: (image) => {
      setHeaderField(image, 'backingFileOffset', 0x1000);
      setHeaderField(image, 'backingFileSize', 2000);
    },
    qemuError: 'Backing file name too long',
  },
  { name: 'unknown incompatible feature', mutate: (image) => setHeaderField(image, 'incompatibleFeatures', 1n << 20n), qemuError: 'Unsupported qcow2 feature(s): Unknown incompatible feature: 100000' },
  { name: 'two unknown incompatible features', mutate: (image) => setHeaderField(image, 'incompatibleFeatures', (1n << 20n) | (1n << 63n)), qemuError: 'Unsupported qcow2 feature(s): Unknown incompatible feature: 8000000000100000' },
  { name: 'compression bit with zlib', mutate: (image) => setHeaderField(image, 'incompatibleFeatures', 1n << 3n), qemuError: 'qcow2: Compression type incompatible feature bit must not be set' },
  {
    name: 'unknown compression type',
    mutate: (image) => {
      setHeaderField(image, 'incompatibleFeatures', 1n << 3n);
      setHeaderField(image, 'headerLength', 112);
      image[104] = 7;
    },
    qemuError: 'qcow2: unknown compression type: 7',
  },
  {
    name: 'zstd compression type without its bit',
    mutate: (image) => {
      setHeaderField(image, 'headerLength', 112);
      image[104] = 1;
    },
    qemuError: 'qcow2: Compression type incompatible feature bit must be set',
  },
  { name: 'corrupt bit, opened read-write', mutate: (image) => setHeaderField(image, 'incompatibleFeatures', 1n << 1n), qemuError: 'qcow2: Image is corrupt; cannot be opened read/write' },
  { name: 'external data file bit without a data file', mutate: (image) => setHeaderField(image, 'incompatibleFeatures', 1n << 2n), qemuError: "'data-file' is required for this image" },
  {
    name: 'extended L2 with 4 KiB clusters',
    mutate: (image) => {
      setHeaderField(image, 'clusterBits', 12);
      setHeaderField(image, 'incompatibleFeatures', 1n << 4n);
    },
    qemuError: 'Unsupported subcluster size: 128',
  },
  { name: 'refcount_order 7', mutate: (image) => setHeaderField(image, 'refcountOrder', 7), qemuError: 'Reference count entry width too large; may not exceed 64 bits' },
  { name: 'AES encryption', mutate: (image) => setHeaderField(image, 'cryptMethod', 1), qemuError: 'Use of AES-CBC encrypted qcow2 images is no longer supported in system emulators' },
  { name: 'LUKS encryption without its header', mutate: (image) => setHeaderField(image, 'cryptMethod', 2), qemuError: 'Missing CRYPTO header for crypt method 2' },
  { name: 'unknown crypt method', mutate: (image) => setHeaderField(image, 'cryptMethod', 3), qemuError: 'Unsupported encryption method 3' },
  // QEMU prints the method as a signed int.
  { name: 'crypt method 2^32 - 1', mutate: (image) => setHeaderField(image, 'cryptMethod', 2 ** 32 - 1), qemuError: 'Unsupported encryption method -1' },
  { name: 'no refcount table', mutate: (image) => setHeaderField(image, 'refcountTableClusters', 0), qemuError: 'Image does not contain a reference count table' },
  { name: 'refcount table too large', mutate: (image) => setHeaderField(image, 'refcountTableClusters', 129), qemuError: 'Reference count table too large' },
  { name: 'refcount table offset unaligned', mutate: (image) => setHeaderField(image, 'refcountTableOffset', CLUSTER + 8), qemuError: 'Reference count table offset invalid' },
  { name: 'refcount table offset overflowing', mutate: (image) => setHeaderField(image, 'refcountTableOffset', 0x7fffffffffff0000n), qemuError: 'Reference count table offset invalid' },
  {
    name: 'snapshot table too large',
    mutate: (image) => {
      setHeaderField(image, 'nbSnapshots', 65537);
      setHeaderField(image, 'snapshotsOffset', 3 * CLUSTER);
    },
    qemuError: 'Snapshot table too large',
  },
  {
    name: 'snapshot table offset unaligned',
    mutate: (image) => {
      setHeaderField(image, 'nbSnapshots', 1);
      setHeaderField(image, 'snapshotsOffset', 3 * CLUSTER + 8);
    },
    qemuError: 'Snapshot table offset invalid',
  },
  { name: 'L1 table too large', mutate: (image) => setHeaderField(image, 'l1Size', 0x2000000 / 8 + 1), qemuError: 'Active L1 table too large' },
  { name: 'L1 table offset unaligned', mutate: (image) => setHeaderField(image, 'l1TableOffset', 3 * CLUSTER + 8), qemuError: 'Active L1 table offset invalid' },
  { name: 'L1 table offset overflowing', mutate: (image) => setHeaderField(image, 'l1TableOffset', 0x7fffffffffff0000n), qemuError: 'Could not read L1 table: Input/output error' },
  { name: 'L1 table too small', mutate: (image) => setHeaderField(image, 'l1Size', 0), qemuError: 'L1 table is too small' },
  { name: 'image too big', mutate: (image) => setHeaderField(image, 'size', 1n << 61n), qemuError: 'Image is too big' },
  { name: 'bitmaps extension of the wrong length', mutate: withBitmapsExtension(bitmapsExtension({}).subarray(0, 16)), qemuError: 'bitmaps_ext: Invalid extension length' },
  { name: 'bitmaps extension with reserved bits', mutate: withBitmapsExtension(bitmapsExtension({ reserved: 1 })), qemuError: 'bitmaps_ext: Reserved field is not zero' },
  { name: 'bitmaps extension with too many bitmaps', mutate: withBitmapsExtension(bitmapsExtension({ count: 65536 })), qemuError: 'bitmaps_ext: Image has 65536 bitmaps, exceeding the QEMU supported maximum of 65535' },
  { name: 'bitmaps extension with no bitmaps', mutate: withBitmapsExtension(bitmapsExtension({ count: 0 })), qemuError: 'found bitmaps extension with zero bitmaps' },
  {
    name: 'bitmap directory offset unaligned',
    mutate: (image) => {
      setHeaderField(image, 'autoclearFeatures', AUTOCLEAR_BITMAPS);
      extensions(image, [{ type: EXT_BITMAPS, data: bitmapsExtension({ directoryOffset: BigInt(4 * CLUSTER + 8) }) }]);
    },
    qemuError: 'bitmaps_ext: invalid bitmap directory offset',
  },
  { name: 'bitmap directory too large', mutate: withBitmapsExtension(bitmapsExtension({ directorySize: 64n << 20n })), qemuError: 'bitmaps_ext: bitmap directory size (67108864) exceeds the maximum supported size (67107840)' },
  {
    name: 'bitmap directory beyond the end of the image',
    mutate: withBitmapsExtension(bitmapsExtension({ directoryOffset: BigInt(64 * CLUSTER) })),
    qemuError: "Bitmap '' doesn't satisfy the constraints",
  },
  {
    name: 'crypto header extension without LUKS',
    mutate: (image) => extensions(image, [{ type: EXT_CRYPTO, data: Buffer.alloc(16) }]),
    qemuError: 'CRYPTO header extension only expected with LUKS encryption method',
  },
  {
    name: 'header extension longer than the cluster',
    mutate: (image) => extensions(image, [{ type: 0x12345678, data: Buffer.alloc(8), length: CLUSTER }]),
    qemuError: 'Header extension too large',
  },
];

/** Writes each hostile image into `target`, in table order; returns their paths. */
export function writeHostileImages(target: string): string[] {
  return HOSTILE_HEADERS.map((hostile, index) => {
    const image = buildImage();
    hostile.mutate(image);
    const file = path.join(target, `hostile-${index}.qcow2`);
    fs.writeFileSync(file, image);
    return file;
  });
}
