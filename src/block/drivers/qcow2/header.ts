/** qcow2 header and header extensions (QEMU's docs/interop/qcow2.txt). */

import { MAX_BITMAPS, MAX_DIRECTORY_SIZE } from './bitmap-directory.ts';

export const QCOW2_MAGIC = 0x514649fb;
export const EXT_END = 0x00000000;
export const EXT_BACKING_FORMAT = 0xe2792aca;
export const EXT_BITMAPS = 0x23852875;
export const EXT_DATA_FILE = 0x44415441;
export const EXT_CRYPTO = 0x0537be77;
export const EXT_FEATURE_TABLE = 0x6803f857;

export const INCOMPAT_DIRTY = 1n << 0n;
export const INCOMPAT_CORRUPT = 1n << 1n;
export const INCOMPAT_DATA_FILE = 1n << 2n;
export const INCOMPAT_COMPRESSION = 1n << 3n;
export const INCOMPAT_EXTL2 = 1n << 4n;
export const AUTOCLEAR_BITMAPS = 1n << 0n;
export const AUTOCLEAR_DATA_FILE_RAW = 1n << 1n;
export const COMPAT_LAZY_REFCOUNTS = 1n << 0n;

export class Qcow2FormatError extends Error {
  override readonly name = 'Qcow2FormatError';
}

export interface HeaderExtension {
  type: number;
  data: Buffer;
}

export interface BitmapsExtension {
  nbBitmaps: number;
  directorySize: number;
  directoryOffset: number;
}

export interface Qcow2Header {
  version: 2 | 3;
  clusterBits: number;
  size: number;
  cryptMethod: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  incompatibleFeatures: bigint;
  compatibleFeatures: bigint;
  autoclearFeatures: bigint;
  refcountOrder: number;
  headerLength: number;
  /** Header bytes between the fields we know and headerLength, kept verbatim. */
  extraHeader: Buffer;
  extensions: HeaderExtension[];
  /** The backing file name as stored after the extensions (empty: no backing file); its offset and size follow it. */
  backingFile: string;
}

const V2_HEADER_LENGTH = 72;
const V3_MIN_HEADER_LENGTH = 104;
const COMPRESSION_TYPE_OFFSET = 104;
const COMPRESSION_ZLIB = 0;
const COMPRESSION_ZSTD = 1;
const MIN_CLUSTER_BITS = 9;
const MAX_CLUSTER_BITS = 21;
const FEATURE_TABLE_ENTRY = 48;
const FEATURE_TYPE_INCOMPATIBLE = 0;
const KNOWN_INCOMPATIBLE = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2;
const EXTL2_SUBCLUSTERS = 32;
const CRYPT_NONE = 0;
const CRYPT_AES = 1;
const CRYPT_LUKS = 2;
const CRYPTO_EXTENSION_SIZE = 16;
const BACKING_FORMAT_MAX = 16;
const BACKING_NAME_MAX = 1023;
const SNAPSHOT_HEADER_SIZE = 40;
const MAX_SNAPSHOTS = 65536;
const MAX_REFTABLE_BYTES = 8n << 20n;
const MAX_L1_BYTES = 32n << 20n;
const INT64_MAX = 2n ** 63n - 1n;
/** QEMU's largest request offset (BDRV_MAX_LENGTH): reading a table past it fails with EIO. */
const MAX_REQUEST_END = 2n ** 63n - 2n ** 30n;
const INT_MAX = 2n ** 31n - 1n;
const UINT64 = 2n ** 64n - 1n;

/** The header's fields as stored, before any of them is trusted. */
interface RawHeader {
  magic: number;
  version: number;
  backingFileOffset: bigint;
  backingFileSize: number;
  clusterBits: number;
  size: bigint;
  cryptMethod: number;
  l1Size: number;
  l1TableOffset: bigint;
  refcountTableOffset: bigint;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: bigint;
  incompatibleFeatures: bigint;
  compatibleFeatures: bigint;
  autoclearFeatures: bigint;
  refcountOrder: number;
  headerLength: number;
  compressionType: number;
}

function readRawHeader(cluster0: Buffer): RawHeader {
  const version = cluster0.readUInt32BE(4);
  const v3 = version !== 2;
  const headerLength = v3 ? cluster0.readUInt32BE(100) : V2_HEADER_LENGTH;
  return {
    magic: cluster0.readUInt32BE(0),
    version,
    backingFileOffset: cluster0.readBigUInt64BE(8),
    backingFileSize: cluster0.readUInt32BE(16),
    clusterBits: cluster0.readUInt32BE(20),
    size: cluster0.readBigUInt64BE(24),
    cryptMethod: cluster0.readUInt32BE(32),
    l1Size: cluster0.readUInt32BE(36),
    l1TableOffset: cluster0.readBigUInt64BE(40),
    refcountTableOffset: cluster0.readBigUInt64BE(48),
    refcountTableClusters: cluster0.readUInt32BE(56),
    nbSnapshots: cluster0.readUInt32BE(60),
    snapshotsOffset: cluster0.readBigUInt64BE(64),
    incompatibleFeatures: v3 ? cluster0.readBigUInt64BE(72) : 0n,
    compatibleFeatures: v3 ? cluster0.readBigUInt64BE(80) : 0n,
    autoclearFeatures: v3 ? cluster0.readBigUInt64BE(88) : 0n,
    refcountOrder: v3 ? cluster0.readUInt32BE(96) : 4,
    headerLength,
    compressionType: headerLength > COMPRESSION_TYPE_OFFSET ? cluster0[COMPRESSION_TYPE_OFFSET]! : COMPRESSION_ZLIB,
  };
}

/** What a check may look at besides the header fields. */
interface OpenContext {
  cluster0: Buffer;
  readOnly: boolean;
  clusterSize: bigint;
  /** Header extensions end where the backing file name starts, else at the end of cluster 0. */
  extensionsEnd: number;
  extensions: HeaderExtension[];
  checkOptions: OptionCheck;
}

/** The node's driver options, checked where QEMU checks them: once the L1 table is read. */
export type OptionCheck = (image: { clusterSize: number; virtualSize: bigint; version: number }) => string | null;

type HeaderCheck = (header: RawHeader, context: OpenContext) => string | null;

/**
 * QEMU's validation of table placement: too many entries first, then an
 * offset that is unaligned or would overflow int64 with the table's size.
 */
function validateTable(name: string, offset: bigint, entries: number, entryBytes: bigint, maxBytes: bigint, clusterSize: bigint): string | null {
  if (BigInt(entries) > maxBytes / entryBytes) return `${name} too large`;
  if (INT64_MAX - BigInt(entries) * entryBytes < offset || offset % clusterSize !== 0n) return `${name} offset invalid`;
  return null;
}

function l2Bits(header: RawHeader): number {
  return header.clusterBits - (header.incompatibleFeatures & INCOMPAT_EXTL2 ? 4 : 3);
}

/**
 * The checks QEMU 7.2 makes when it opens a qcow2 image, in its order, each
 * with its error text; the first that fails is the blockdev-add error. The
 * images QEMU opens but qblockd cannot serve are refused last, in qblockd's
 * own words.
 */
const OPEN_CHECKS: HeaderCheck[] = [
  (h) => (h.magic !== QCOW2_MAGIC ? 'Image is not in qcow2 format' : null),
  (h) => (h.version < 2 || h.version > 3 ? `Unsupported qcow2 version ${h.version}` : null),
  (h) => (h.clusterBits < MIN_CLUSTER_BITS || h.clusterBits > MAX_CLUSTER_BITS ? `Unsupported cluster size: 2^${h.clusterBits}` : null),
  (h) => (h.version === 3 && h.headerLength < V3_MIN_HEADER_LENGTH ? 'qcow2 header too short' : null),
  (h, c) => (BigInt(h.headerLength) > c.clusterSize ? 'qcow2 header exceeds cluster size' : null),
  (h, c) => (h.backingFileOffset > c.clusterSize ? 'Invalid backing file offset' : null),
  (h) => (h.compressionType !== COMPRESSION_ZLIB && h.compressionType !== COMPRESSION_ZSTD ? `qcow2: unknown compression type: ${h.compressionType}` : null),
  (h) => {
    const flagged = (h.incompatibleFeatures & INCOMPAT_COMPRESSION) !== 0n;
    if (h.compressionType === COMPRESSION_ZLIB && flagged) return 'qcow2: Compression type incompatible feature bit must not be set';
    if (h.compressionType !== COMPRESSION_ZLIB && !flagged) return 'qcow2: Compression type incompatible feature bit must be set';
    return null;
  },
  (h, c) => {
    const unknown = h.incompatibleFeatures & ~KNOWN_INCOMPATIBLE;
    return unknown ? `Unsupported qcow2 feature(s): ${describeFeatures(unknown, c)}` : null;
  },
  (h, c) => (h.incompatibleFeatures & INCOMPAT_CORRUPT && !c.readOnly ? 'qcow2: Image is corrupt; cannot be opened read/write' : null),
  (h, c) => {
    const subclusterSize = h.incompatibleFeatures & INCOMPAT_EXTL2 ? Number(c.clusterSize) / EXTL2_SUBCLUSTERS : Number(c.clusterSize);
    return subclusterSize < 2 ** MIN_CLUSTER_BITS ? `Unsupported subcluster size: ${subclusterSize}` : null;
  },
  (h) => (h.refcountOrder > 6 ? 'Reference count entry width too large; may not exceed 64 bits' : null),
  (h) => (h.cryptMethod === CRYPT_AES ? 'Use of AES-CBC encrypted qcow2 images is no longer supported in system emulators' : null),
  (h) => (h.refcountTableClusters === 0 ? 'Image does not contain a reference count table' : null),
  (h, c) => validateTable('Reference count table', h.refcountTableOffset, h.refcountTableClusters, c.clusterSize, MAX_REFTABLE_BYTES, c.clusterSize),
  (h, c) => validateTable('Snapshot table', h.snapshotsOffset, h.nbSnapshots, BigInt(SNAPSHOT_HEADER_SIZE), BigInt(SNAPSHOT_HEADER_SIZE * MAX_SNAPSHOTS), c.clusterSize),
  (h, c) => validateTable('Active L1 table', h.l1TableOffset, h.l1Size, 8n, MAX_L1_BYTES, c.clusterSize),
  (h) => (neededL1Entries(h) > INT_MAX ? 'Image is too big' : null),
  (h) => (BigInt(h.l1Size) < neededL1Entries(h) ? 'L1 table is too small' : null),
  (h) => (h.l1Size > 0 && h.l1TableOffset + BigInt(h.l1Size) * 8n > MAX_REQUEST_END ? 'Could not read L1 table: Input/output error' : null),
  (h, c) => c.checkOptions({ clusterSize: Number(c.clusterSize), virtualSize: h.size, version: h.version }),
  (h) => (h.cryptMethod !== CRYPT_NONE && h.cryptMethod !== CRYPT_LUKS ? `Unsupported encryption method ${h.cryptMethod | 0}` : null),
  (h) => (h.refcountTableOffset + (BigInt(h.refcountTableClusters) << BigInt(h.clusterBits)) > MAX_REQUEST_END ? 'Could not initialize refcount handling: Input/output error' : null),
  (h, c) => {
    try {
      c.extensions = parseExtensions(c.cluster0, h.headerLength, c.extensionsEnd);
    } catch (error) {
      if (error instanceof Qcow2FormatError) return error.message;
      throw error;
    }
    return checkExtensions(h, c.extensions, c.clusterSize);
  },
  (h, c) => {
    if (!(h.incompatibleFeatures & INCOMPAT_DATA_FILE)) return null;
    const named = c.extensions.some((extension) => extension.type === EXT_DATA_FILE);
    return named ? 'qcow2 images with an external data file are not supported by qblockd' : "'data-file' is required for this image";
  },
  (h) => (!(h.incompatibleFeatures & INCOMPAT_DATA_FILE) && h.autoclearFeatures & AUTOCLEAR_DATA_FILE_RAW ? 'data-file-raw requires a data file' : null),
  (h, c) => (h.cryptMethod === CRYPT_LUKS && !c.extensions.some((extension) => extension.type === EXT_CRYPTO) ? `Missing CRYPTO header for crypt method ${h.cryptMethod}` : null),
  (h, c) => {
    if (h.backingFileOffset === 0n) return null;
    const room = Math.min(BACKING_NAME_MAX, Number(c.clusterSize - h.backingFileOffset));
    return h.backingFileSize > room ? 'Backing file name too long' : null;
  },
  // The block layer's check once the driver is open: only a size whose L1 count wrapped around gets here.
  (h) => (h.size > MAX_REQUEST_END ? 'Could not refresh total sector count: File too large' : null),
  // What QEMU opens and qblockd does not serve.
  (h) => (h.cryptMethod !== CRYPT_NONE ? 'Encrypted qcow2 images are not supported by qblockd' : null),
  (h) => (h.incompatibleFeatures & INCOMPAT_EXTL2 ? 'qcow2 images with extended L2 entries are not supported by qblockd' : null),
  (h) => (h.compressionType !== COMPRESSION_ZLIB ? 'qcow2 compression type other than zlib is not supported by qblockd' : null),
  (h) => (h.size > BigInt(Number.MAX_SAFE_INTEGER) ? 'qcow2: image size is out of range' : null),
  // Table offsets far beyond any file are kept (QEMU reads zeroes there) as long as a double holds them exactly.
  (h) => (!exact(h.l1TableOffset) ? 'qcow2: L1 table offset is out of range' : null),
  (h) => (!exact(h.refcountTableOffset) ? 'qcow2: refcount table offset is out of range' : null),
  (h) => (!exact(h.snapshotsOffset) ? 'qcow2: snapshot table offset is out of range' : null),
];

function exact(value: bigint): boolean {
  return BigInt(Number(value)) === value;
}

/** QEMU's count of L1 entries the size needs, rounding up in 64 bits: a size near 2^64 wraps to a small count. */
function neededL1Entries(header: RawHeader): bigint {
  const shift = BigInt(header.clusterBits + l2Bits(header));
  return ((header.size + (1n << shift) - 1n) & UINT64) >> shift;
}

/**
 * Names unknown incompatible features as QEMU does: by the image's own
 * feature name table where it has one, the rest as a hex mask.
 */
function describeFeatures(unknown: bigint, context: OpenContext): string {
  const names: string[] = [];
  let rest = unknown;
  for (const extension of scanExtensions(context.cluster0, readRawHeader(context.cluster0).headerLength, context.extensionsEnd)) {
    if (extension.type !== EXT_FEATURE_TABLE) continue;
    for (let at = 0; at + FEATURE_TABLE_ENTRY <= extension.data.length; at += FEATURE_TABLE_ENTRY) {
      const nameBytes = extension.data.subarray(at + 2, at + FEATURE_TABLE_ENTRY);
      const nameEnd = nameBytes.indexOf(0);
      const name = nameBytes.subarray(0, nameEnd < 0 ? nameBytes.length : nameEnd).toString('latin1');
      if (name === '') break;
      const bit = 1n << BigInt(extension.data[at + 1]! & 63);
      if (extension.data[at] === FEATURE_TYPE_INCOMPATIBLE && rest & bit) {
        names.push(name);
        rest &= ~bit;
      }
    }
  }
  if (rest) names.push(`Unknown incompatible feature: ${rest.toString(16)}`);
  return names.join(', ');
}

/** Extensions as far as they can be read, for naming features before the header is validated. */
function scanExtensions(cluster0: Buffer, start: number, end: number): HeaderExtension[] {
  try {
    return parseExtensions(cluster0, start, end);
  } catch {
    return [];
  }
}

/** The checks QEMU makes on the extensions it knows while reading them, in the order they appear. */
function checkExtensions(header: RawHeader, extensions: HeaderExtension[], clusterSize: bigint): string | null {
  for (const { type, data } of extensions) {
    if (type === EXT_BACKING_FORMAT && data.length >= BACKING_FORMAT_MAX) {
      return `ERROR: ext_backing_format: len=${data.length} too large (>=${BACKING_FORMAT_MAX})`;
    }
    if (type === EXT_CRYPTO) {
      if (header.cryptMethod !== CRYPT_LUKS) return 'CRYPTO header extension only expected with LUKS encryption method';
      if (data.length !== CRYPTO_EXTENSION_SIZE) return `CRYPTO header extension size ${data.length}, but expected size ${CRYPTO_EXTENSION_SIZE}`;
      const offset = data.readBigUInt64BE(0);
      if (offset % clusterSize !== 0n) return `Encryption header offset '${offset}' is not a multiple of cluster size '${clusterSize}'`;
    }
    if (type === EXT_BITMAPS) {
      const problem = checkBitmapsExtension(header, data, clusterSize);
      if (problem) return problem;
    }
  }
  return null;
}

/** A bitmaps extension counts only while the autoclear bit vouches for it; QEMU ignores it otherwise. */
function checkBitmapsExtension(header: RawHeader, data: Buffer, clusterSize: bigint): string | null {
  if (data.length !== 24) return 'bitmaps_ext: Invalid extension length';
  if (!(header.autoclearFeatures & AUTOCLEAR_BITMAPS)) return null;
  if (data.readUInt32BE(4) !== 0) return 'bitmaps_ext: Reserved field is not zero';
  const count = data.readUInt32BE(0);
  const directorySize = data.readBigUInt64BE(8);
  const directoryOffset = data.readBigUInt64BE(16);
  if (count > MAX_BITMAPS) return `bitmaps_ext: Image has ${count} bitmaps, exceeding the QEMU supported maximum of ${MAX_BITMAPS}`;
  if (count === 0) return 'found bitmaps extension with zero bitmaps';
  if (directoryOffset % clusterSize !== 0n) return 'bitmaps_ext: invalid bitmap directory offset';
  if (directorySize > BigInt(MAX_DIRECTORY_SIZE)) {
    return `bitmaps_ext: bitmap directory size (${directorySize}) exceeds the maximum supported size (${MAX_DIRECTORY_SIZE})`;
  }
  return null;
}

/**
 * Parses cluster 0 (read zero-filled past the end of the file, as QEMU reads
 * it) and refuses it with QEMU's error text where QEMU would not open it.
 */
export function parseHeader(cluster0: Buffer, options: { readOnly: boolean; checkOptions?: OptionCheck }): Qcow2Header {
  const raw = readRawHeader(cluster0);
  const clusterSize = raw.clusterBits >= MIN_CLUSTER_BITS && raw.clusterBits <= MAX_CLUSTER_BITS ? 1n << BigInt(raw.clusterBits) : 0n;
  const context: OpenContext = {
    cluster0,
    readOnly: options.readOnly,
    clusterSize,
    extensionsEnd: raw.backingFileOffset !== 0n ? Number(raw.backingFileOffset) : Number(clusterSize),
    extensions: [],
    checkOptions: options.checkOptions ?? (() => null),
  };
  for (const check of OPEN_CHECKS) {
    const problem = check(raw, context);
    if (problem) throw new Qcow2FormatError(problem);
  }
  return {
    version: raw.version as 2 | 3,
    clusterBits: raw.clusterBits,
    size: Number(raw.size),
    cryptMethod: raw.cryptMethod,
    l1Size: raw.l1Size,
    l1TableOffset: Number(raw.l1TableOffset),
    refcountTableOffset: Number(raw.refcountTableOffset),
    refcountTableClusters: raw.refcountTableClusters,
    nbSnapshots: raw.nbSnapshots,
    snapshotsOffset: Number(raw.snapshotsOffset),
    incompatibleFeatures: raw.incompatibleFeatures,
    compatibleFeatures: raw.compatibleFeatures,
    autoclearFeatures: raw.autoclearFeatures,
    refcountOrder: raw.refcountOrder,
    headerLength: raw.headerLength,
    extraHeader: Buffer.from(cluster0.subarray(V3_MIN_HEADER_LENGTH, Math.max(V3_MIN_HEADER_LENGTH, raw.headerLength))),
    extensions: context.extensions,
    backingFile: readBackingFile(cluster0, raw),
  };
}

function readBackingFile(cluster0: Buffer, raw: RawHeader): string {
  if (raw.backingFileOffset === 0n) return '';
  const start = Number(raw.backingFileOffset);
  return cluster0.subarray(start, start + raw.backingFileSize).toString('utf8');
}

/** A backing file name taken relative to the directory of the image file that names it, as QEMU resolves it. */
export function resolveBackingFilename(imageFilename: string, backingFile: string): string {
  if (backingFile.startsWith('/') || backingFile.startsWith('json:')) return backingFile;
  return imageFilename.slice(0, imageFilename.lastIndexOf('/') + 1) + backingFile;
}

/** The backing format extension's text, where the image names one. */
export function backingFormat(header: Qcow2Header): string | undefined {
  return header.extensions.find((extension) => extension.type === EXT_BACKING_FORMAT)?.data.toString('latin1');
}

/** Extensions from `start` until the end marker; one that would run past `end` is QEMU's "too large". */
function parseExtensions(cluster0: Buffer, start: number, end: number): HeaderExtension[] {
  const extensions: HeaderExtension[] = [];
  let offset = start;
  while (offset < end) {
    const type = cluster0.readUInt32BE(offset);
    const length = cluster0.readUInt32BE(offset + 4);
    offset += 8;
    if (offset > end || length > end - offset) throw new Qcow2FormatError('Header extension too large');
    if (type === EXT_END) return extensions;
    extensions.push({ type, data: Buffer.from(cluster0.subarray(offset, offset + length)) });
    offset += Math.ceil(length / 8) * 8;
  }
  return extensions;
}

function u64(buffer: Buffer, offset: number, what: string): number {
  const value = buffer.readBigUInt64BE(offset);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Qcow2FormatError(`qcow2: ${what} is out of range`);
  return Number(value);
}

export function readBitmapsExtension(header: Qcow2Header): BitmapsExtension | null {
  const extension = header.extensions.find((candidate) => candidate.type === EXT_BITMAPS);
  if (!extension) return null;
  return {
    nbBitmaps: extension.data.readUInt32BE(0),
    directorySize: u64(extension.data, 8, 'bitmap directory size'),
    directoryOffset: u64(extension.data, 16, 'bitmap directory offset'),
  };
}

/** Replaces (or, with null, drops) the bitmaps extension, keeping the others in place. */
export function withBitmapsExtension(header: Qcow2Header, bitmaps: BitmapsExtension | null): HeaderExtension[] {
  const data = bitmaps && Buffer.alloc(24);
  if (data && bitmaps) {
    data.writeUInt32BE(bitmaps.nbBitmaps, 0);
    data.writeBigUInt64BE(BigInt(bitmaps.directorySize), 8);
    data.writeBigUInt64BE(BigInt(bitmaps.directoryOffset), 16);
  }
  const others = header.extensions.filter((extension) => extension.type !== EXT_BITMAPS);
  if (!data) return others;
  const index = header.extensions.findIndex((extension) => extension.type === EXT_BITMAPS);
  const result = [...others];
  result.splice(index >= 0 ? index : result.length, 0, { type: EXT_BITMAPS, data });
  return result;
}

/** The header and its extensions, laid out as they go into cluster 0. */
export function serializeHeader(header: Qcow2Header, clusterSize: number): Buffer {
  const out = Buffer.alloc(clusterSize);
  out.writeUInt32BE(QCOW2_MAGIC, 0);
  out.writeUInt32BE(header.version, 4);
  out.writeUInt32BE(header.clusterBits, 20);
  out.writeBigUInt64BE(BigInt(header.size), 24);
  out.writeUInt32BE(header.cryptMethod, 32);
  out.writeUInt32BE(header.l1Size, 36);
  out.writeBigUInt64BE(BigInt(header.l1TableOffset), 40);
  out.writeBigUInt64BE(BigInt(header.refcountTableOffset), 48);
  out.writeUInt32BE(header.refcountTableClusters, 56);
  out.writeUInt32BE(header.nbSnapshots, 60);
  out.writeBigUInt64BE(BigInt(header.snapshotsOffset), 64);
  let offset = V2_HEADER_LENGTH;
  if (header.version === 3) {
    out.writeBigUInt64BE(header.incompatibleFeatures, 72);
    out.writeBigUInt64BE(header.compatibleFeatures, 80);
    out.writeBigUInt64BE(header.autoclearFeatures, 88);
    out.writeUInt32BE(header.refcountOrder, 96);
    out.writeUInt32BE(header.headerLength, 100);
    header.extraHeader.copy(out, V3_MIN_HEADER_LENGTH);
    offset = header.headerLength;
  }
  for (const extension of header.extensions) {
    const padded = Math.ceil(extension.data.length / 8) * 8;
    if (offset + 8 + padded + 8 > clusterSize) throw new Qcow2FormatError('qcow2 header extensions do not fit in the header cluster');
    out.writeUInt32BE(extension.type, offset);
    out.writeUInt32BE(extension.data.length, offset + 4);
    extension.data.copy(out, offset + 8);
    offset += 8 + padded;
  }
  out.writeUInt32BE(EXT_END, offset);
  out.writeUInt32BE(0, offset + 4);
  offset += 8;
  // The backing file name follows the extensions, as QEMU lays it out; its place moves with them.
  const name = Buffer.from(header.backingFile, 'utf8');
  if (offset + name.length > clusterSize) throw new Qcow2FormatError('qcow2 header extensions do not fit in the header cluster');
  out.writeBigUInt64BE(name.length > 0 ? BigInt(offset) : 0n, 8);
  out.writeUInt32BE(name.length, 16);
  name.copy(out, offset);
  return out.subarray(0, offset + name.length);
}
