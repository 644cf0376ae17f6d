import {
  AUTOCLEAR_DATA_FILE_RAW,
  COMPAT_LAZY_REFCOUNTS,
  EXT_BACKING_FORMAT,
  EXT_DATA_FILE,
  EXT_FEATURE_TABLE,
  INCOMPAT_COMPRESSION,
  INCOMPAT_DATA_FILE,
  INCOMPAT_EXTL2,
  serializeHeader,
  type HeaderExtension,
  type Qcow2Header,
} from './header.ts';

/** A new qcow2 image's settings, with QEMU's defaults applied (BlockdevCreateOptionsQcow2). */
export interface Qcow2CreateSpec {
  size: bigint;
  version: 2 | 3;
  clusterSize: number;
  refcountBits: number;
  lazyRefcounts: boolean;
  extendedL2: boolean;
  compressionType: 'zlib' | 'zstd';
  backingFile?: string;
  backingFormat?: string;
  /** The external data file's name as the header records it. */
  dataFile?: string;
  dataFileRaw: boolean;
}

/** What the creation request may ask for beyond the spec, checked with it. */
export interface Qcow2CreateRequest extends Qcow2CreateSpec {
  preallocation: 'off' | 'metadata' | 'falloc' | 'full';
  /** A data file was named (it is opened only after the checks). */
  hasDataFile: boolean;
  hasBackingFormat: boolean;
}

export const DEFAULT_CLUSTER_SIZE = 65536;
const MIN_CLUSTER_SIZE = 512;
const MAX_CLUSTER_SIZE = 2 * 1024 * 1024;
const EXTL2_MIN_CLUSTER_SIZE = 16384;
const SECTOR = 512n;
/** QEMU's largest node length (BDRV_MAX_LENGTH). */
const MAX_LENGTH = 2n ** 63n - 2n ** 30n;
/** QCOW_MAX_L1_SIZE: 32 MiB of L1 entries. */
const MAX_L1_ENTRIES = (32 * 1024 * 1024) / 8;
const V3_HEADER_LENGTH = 112;
const COMPRESSION_TYPE_OFFSET = 104;
const V3_FIXED_HEADER = 104;
const FEATURE_NAME_LENGTH = 46;
const FEATURE_TABLE_MIN_CLUSTER = 4096;
const V3_OR_GREATER = 'compatibility level 1.1 and above (use version=v3 or greater)';

const isPowerOfTwo = (value: number) => value > 0 && (value & (value - 1)) === 0;

/** qcow2_co_create's option checks in QEMU's order: the first that fails is the job's error. */
const CREATE_CHECKS: Array<(r: Qcow2CreateRequest) => string | null> = [
  (r) => (r.size % SECTOR !== 0n ? `Image size must be a multiple of ${SECTOR} bytes` : null),
  (r) => (r.extendedL2 && r.version < 3 ? `Extended L2 entries are only supported with ${V3_OR_GREATER}` : null),
  (r) =>
    !isPowerOfTwo(r.clusterSize) || r.clusterSize < MIN_CLUSTER_SIZE || r.clusterSize > MAX_CLUSTER_SIZE
      ? 'Cluster size must be a power of two between 512 and 2048k'
      : null,
  (r) =>
    r.extendedL2 && r.clusterSize < EXTL2_MIN_CLUSTER_SIZE
      ? `Extended L2 entries are only supported with cluster sizes of at least ${EXTL2_MIN_CLUSTER_SIZE} bytes`
      : null,
  (r) =>
    r.backingFile !== undefined && r.preallocation !== 'off' && !r.extendedL2
      ? 'Backing file and preallocation can only be used at the same time if extended_l2 is on'
      : null,
  (r) => (r.hasBackingFormat && r.backingFile === undefined ? 'Backing format cannot be used without backing file' : null),
  (r) => (r.lazyRefcounts && r.version < 3 ? `Lazy refcounts only supported with ${V3_OR_GREATER}` : null),
  (r) => (r.refcountBits > 64 || !isPowerOfTwo(r.refcountBits) ? 'Refcount width must be a power of two and may not exceed 64 bits' : null),
  (r) =>
    r.version < 3 && r.refcountBits !== 16
      ? 'Different refcount widths than 16 bits require compatibility level 1.1 or above (use version=v3 or greater)'
      : null,
  (r) => (r.dataFileRaw && !r.hasDataFile ? 'data-file-raw requires data-file' : null),
  (r) => (r.dataFileRaw && r.backingFile !== undefined ? 'Backing file and data-file-raw cannot be used at the same time' : null),
  (r) => (r.hasDataFile && r.version < 3 ? `External data files are only supported with ${V3_OR_GREATER}` : null),
];

/** Checks made once the data file is open. */
const LATE_CHECKS: Array<(r: Qcow2CreateRequest) => string | null> = [
  (r) => (r.compressionType !== 'zlib' && r.version < 3 ? `Non-zlib compression type is only supported with ${V3_OR_GREATER}` : null),
];

export function qcow2CreateProblem(request: Qcow2CreateRequest): string | null {
  return firstProblem(CREATE_CHECKS, request);
}

export function qcow2LateCreateProblem(request: Qcow2CreateRequest): string | null {
  return firstProblem(LATE_CHECKS, request);
}

/** The size checks QEMU makes when it grows the new image to its size ("Could not resize image: ..."). */
export function qcow2SizeProblem(spec: Qcow2CreateSpec): string | null {
  if (spec.size > MAX_LENGTH) return `Could not resize image: offset(${spec.size}) exceeds maximum(${MAX_LENGTH})`;
  if (l1Entries(spec) > BigInt(MAX_L1_ENTRIES)) return 'Could not resize image: Failed to grow the L1 table: File too large';
  return null;
}

function firstProblem(checks: Array<(r: Qcow2CreateRequest) => string | null>, request: Qcow2CreateRequest): string | null {
  for (const check of checks) {
    const problem = check(request);
    if (problem) return problem;
  }
  return null;
}

function l1Entries(spec: Qcow2CreateSpec): bigint {
  const l2Entries = BigInt(spec.clusterSize / (spec.extendedL2 ? 16 : 8));
  const perL1Entry = BigInt(spec.clusterSize) * l2Entries;
  return (spec.size + perL1Entry - 1n) / perL1Entry;
}

/** The names QEMU 7.2 writes into every v3 header's feature name table: [type, bit, name]. */
const FEATURE_NAMES: Array<[number, number, string]> = [
  [0, 0, 'dirty bit'],
  [0, 1, 'corrupt bit'],
  [0, 2, 'external data file'],
  [0, 3, 'compression type'],
  [0, 4, 'extended L2 entries'],
  [1, 0, 'lazy refcounts'],
  [2, 0, 'bitmaps'],
  [2, 1, 'raw external data'],
];

function featureTable(): Buffer {
  const table = Buffer.alloc(FEATURE_NAMES.length * (2 + FEATURE_NAME_LENGTH));
  FEATURE_NAMES.forEach(([type, bit, name], index) => {
    const at = index * (2 + FEATURE_NAME_LENGTH);
    table[at] = type;
    table[at + 1] = bit;
    table.write(name, at + 2, 'latin1');
  });
  return table;
}

/** One write of the new image: `data` at byte `offset` of the file. */
export interface ImageWrite {
  offset: number;
  data: Buffer;
}

/**
 * The writes that make a new qcow2 image, laid out as QEMU 7.2's
 * blockdev-create and `qemu-img create` leave it: cluster 0 the header (its
 * extensions, then the backing file name), cluster 1 the refcount table,
 * cluster 2 its one refcount block, then the L1 table, the file ending where
 * the L1 table ends. Returns null when the metadata would not fit in the
 * first refcount block (tiny clusters, large image), which QEMU lays out
 * differently.
 */
export function qcow2ImageWrites(spec: Qcow2CreateSpec): ImageWrite[] | null {
  const { clusterSize } = spec;
  const l1Size = Number(l1Entries(spec));
  const l1Clusters = Math.ceil((l1Size * 8) / clusterSize);
  const usedClusters = 3 + l1Clusters;
  if (usedClusters > (clusterSize * 8) / spec.refcountBits) return null;

  const tables = Buffer.alloc(2 * clusterSize);
  tables.writeBigUInt64BE(BigInt(2 * clusterSize), 0);
  for (let cluster = 0; cluster < usedClusters; cluster++) setRefcount(tables.subarray(clusterSize), cluster, spec.refcountBits, 1);

  const writes: ImageWrite[] = [
    { offset: 0, data: headerCluster(spec, l1Size, l1Size > 0 ? 3 * clusterSize : 0) },
    { offset: clusterSize, data: tables },
  ];
  if (l1Size > 0) writes.push({ offset: 3 * clusterSize, data: Buffer.alloc(l1Size * 8) });
  return writes;
}

/** Sets a refcount (at most 255) in a zeroed block: below a byte, entries fill each byte from its low bits; wider ones are big-endian. */
function setRefcount(block: Buffer, index: number, bits: number, value: number): void {
  if (bits < 8) {
    const perByte = 8 / bits;
    const shift = (index % perByte) * bits;
    const byte = Math.floor(index / perByte);
    block[byte] = (block[byte]! & ~(((1 << bits) - 1) << shift)) | (value << shift);
    return;
  }
  const bytes = bits / 8;
  block[index * bytes + bytes - 1] = value;
}

function headerCluster(spec: Qcow2CreateSpec, l1Size: number, l1TableOffset: number): Buffer {
  const { clusterSize } = spec;
  const v3 = spec.version === 3;
  const extraHeader = Buffer.alloc(V3_HEADER_LENGTH - V3_FIXED_HEADER);
  if (spec.compressionType === 'zstd') extraHeader[COMPRESSION_TYPE_OFFSET - V3_FIXED_HEADER] = 1;
  const extensions: HeaderExtension[] = [];
  if (spec.backingFormat !== undefined) extensions.push({ type: EXT_BACKING_FORMAT, data: Buffer.from(spec.backingFormat) });
  if (spec.dataFile !== undefined) extensions.push({ type: EXT_DATA_FILE, data: Buffer.from(spec.dataFile) });
  // QEMU 7.2 leaves the feature name table out of headers of 4 KiB clusters and less.
  if (v3 && clusterSize > FEATURE_TABLE_MIN_CLUSTER) extensions.push({ type: EXT_FEATURE_TABLE, data: featureTable() });
  const header: Qcow2Header = {
    version: spec.version,
    clusterBits: Math.log2(clusterSize),
    size: 0,
    cryptMethod: 0,
    l1Size,
    l1TableOffset,
    refcountTableOffset: clusterSize,
    refcountTableClusters: 1,
    nbSnapshots: 0,
    snapshotsOffset: 0,
    incompatibleFeatures:
      (spec.dataFile !== undefined ? INCOMPAT_DATA_FILE : 0n) |
      (spec.compressionType === 'zstd' ? INCOMPAT_COMPRESSION : 0n) |
      (spec.extendedL2 ? INCOMPAT_EXTL2 : 0n),
    compatibleFeatures: spec.lazyRefcounts ? COMPAT_LAZY_REFCOUNTS : 0n,
    autoclearFeatures: spec.dataFileRaw ? AUTOCLEAR_DATA_FILE_RAW : 0n,
    refcountOrder: Math.log2(spec.refcountBits),
    headerLength: v3 ? V3_HEADER_LENGTH : 72,
    extraHeader,
    extensions,
    backingFile: spec.backingFile ?? '',
  };
  const cluster = Buffer.alloc(clusterSize);
  serializeHeader(header, clusterSize).copy(cluster);
  cluster.writeBigUInt64BE(spec.size, 24);
  return cluster;
}

/** An overlay's backing file as its header names it (qemu-img create -b FILE -F FORMAT). */
export interface BackingFileName {
  file: string;
  format: string;
}

/** The bytes of a new image with QEMU's default settings (`qemu-img create -f qcow2 [-b FILE -F FORMAT] FILE SIZE`). */
export function defaultQcow2Image(size: bigint, backing?: BackingFileName): Buffer {
  const spec: Qcow2CreateSpec = {
    size,
    backingFile: backing?.file,
    backingFormat: backing?.format,
    version: 3,
    clusterSize: DEFAULT_CLUSTER_SIZE,
    refcountBits: 16,
    lazyRefcounts: false,
    extendedL2: false,
    compressionType: 'zlib',
    dataFileRaw: false,
  };
  const writes = qcow2ImageWrites(spec)!;
  const last = writes[writes.length - 1]!;
  const image = Buffer.alloc(last.offset + last.data.length);
  for (const { offset, data } of writes) data.copy(image, offset);
  return image;
}
