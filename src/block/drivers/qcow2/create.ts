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
import { RefcountManager } from './refcounts.ts';
import { MemoryByteStore } from '../byte-store.ts';

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
 * The writes that make a new qcow2 image, in the steps of QEMU 7.2's blockdev-create and
 * `qemu-img create`: cluster 0 the header, cluster 1 a refcount table whose one block is
 * cluster 2, those three clusters counted, then the L1 table allocated as any clusters
 * are (so an L1 table larger than the first block counts gets refcount blocks, and
 * the table grows, where QEMU's allocator puts them), and the full header last (its
 * extensions, then the backing file name). The file ends where the L1 table ends.
 */
export function qcow2ImageWrites(spec: Qcow2CreateSpec): ImageWrite[] {
  const { clusterSize } = spec;
  const header = newHeader(spec);
  const store = new MemoryByteStore();
  store.pwrite(headerCluster(spec, header), 0);
  const tables = Buffer.alloc(2 * clusterSize);
  tables.writeBigUInt64BE(BigInt(2 * clusterSize), 0);
  store.pwrite(tables, clusterSize);
  // The header is written whole at the end, with wherever the refcount table has gone.
  const refcounts = new RefcountManager(store, header, () => {});
  refcounts.allocate(3);
  const l1Size = Number(l1Entries(spec));
  if (l1Size > 0) {
    header.l1TableOffset = refcounts.allocate(Math.ceil((l1Size * 8) / clusterSize));
    header.l1Size = l1Size;
    store.pwrite(Buffer.alloc(l1Size * 8), header.l1TableOffset);
  }
  store.pwrite(headerCluster(spec, header), 0);
  return store.writes.filter((write) => write !== 'flush');
}

/** The header of a new image, with no L1 table yet and its refcount table in cluster 1. */
function newHeader(spec: Qcow2CreateSpec): Qcow2Header {
  const { clusterSize } = spec;
  const v3 = spec.version === 3;
  const extraHeader = Buffer.alloc(V3_HEADER_LENGTH - V3_FIXED_HEADER);
  if (spec.compressionType === 'zstd') extraHeader[COMPRESSION_TYPE_OFFSET - V3_FIXED_HEADER] = 1;
  const extensions: HeaderExtension[] = [];
  if (spec.backingFormat !== undefined) extensions.push({ type: EXT_BACKING_FORMAT, data: Buffer.from(spec.backingFormat) });
  if (spec.dataFile !== undefined) extensions.push({ type: EXT_DATA_FILE, data: Buffer.from(spec.dataFile) });
  // QEMU 7.2 leaves the feature name table out of headers of 4 KiB clusters and less.
  if (v3 && clusterSize > FEATURE_TABLE_MIN_CLUSTER) extensions.push({ type: EXT_FEATURE_TABLE, data: featureTable() });
  return {
    version: spec.version,
    clusterBits: Math.log2(clusterSize),
    size: 0,
    cryptMethod: 0,
    l1Size: 0,
    l1TableOffset: 0,
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
}

function headerCluster(spec: Qcow2CreateSpec, header: Qcow2Header): Buffer {
  const cluster = Buffer.alloc(spec.clusterSize);
  serializeHeader(header, spec.clusterSize).copy(cluster);
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
  const writes = qcow2ImageWrites(spec);
  const image = Buffer.alloc(writes.reduce((end, { offset, data }) => Math.max(end, offset + data.length), 0));
  for (const { offset, data } of writes) data.copy(image, offset);
  return image;
}
