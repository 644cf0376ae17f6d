/** qcow2 header and header extensions (QEMU's docs/interop/qcow2.txt). */

export const QCOW2_MAGIC = 0x514649fb;
export const EXT_END = 0x00000000;
export const EXT_BACKING_FORMAT = 0xe2792aca;
export const EXT_BITMAPS = 0x23852875;
export const EXT_DATA_FILE = 0x44415441;
export const EXT_CRYPTO = 0x0537be77;

export const INCOMPAT_DIRTY = 1n << 0n;
export const INCOMPAT_CORRUPT = 1n << 1n;
export const INCOMPAT_DATA_FILE = 1n << 2n;
export const INCOMPAT_COMPRESSION = 1n << 3n;
export const INCOMPAT_EXTL2 = 1n << 4n;
export const AUTOCLEAR_BITMAPS = 1n << 0n;

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
  backingFileOffset: number;
  backingFileSize: number;
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
}

const V2_HEADER_LENGTH = 72;
const V3_MIN_HEADER_LENGTH = 104;

function u64(buffer: Buffer, offset: number, what: string): number {
  const value = buffer.readBigUInt64BE(offset);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Qcow2FormatError(`qcow2: ${what} is out of range`);
  return Number(value);
}

/** Parses cluster 0. Throws for anything we could not write back faithfully. */
export function parseHeader(cluster0: Buffer, fileSize: number): Qcow2Header {
  if (cluster0.length < V2_HEADER_LENGTH || cluster0.readUInt32BE(0) !== QCOW2_MAGIC) {
    throw new Qcow2FormatError('Image is not in qcow2 format');
  }
  const version = cluster0.readUInt32BE(4);
  if (version !== 2 && version !== 3) throw new Qcow2FormatError(`Unsupported qcow2 version ${version}`);
  const clusterBits = cluster0.readUInt32BE(20);
  if (clusterBits < 9 || clusterBits > 21) throw new Qcow2FormatError(`Unsupported cluster size: 2^${clusterBits}`);
  const header: Qcow2Header = {
    version,
    backingFileOffset: u64(cluster0, 8, 'backing file offset'),
    backingFileSize: cluster0.readUInt32BE(16),
    clusterBits,
    size: u64(cluster0, 24, 'image size'),
    cryptMethod: cluster0.readUInt32BE(32),
    l1Size: cluster0.readUInt32BE(36),
    l1TableOffset: u64(cluster0, 40, 'L1 table offset'),
    refcountTableOffset: u64(cluster0, 48, 'refcount table offset'),
    refcountTableClusters: cluster0.readUInt32BE(56),
    nbSnapshots: cluster0.readUInt32BE(60),
    snapshotsOffset: u64(cluster0, 64, 'snapshot table offset'),
    incompatibleFeatures: 0n,
    compatibleFeatures: 0n,
    autoclearFeatures: 0n,
    refcountOrder: 4,
    headerLength: V2_HEADER_LENGTH,
    extraHeader: Buffer.alloc(0),
    extensions: [],
  };
  if (version === 3) {
    if (cluster0.length < V3_MIN_HEADER_LENGTH) throw new Qcow2FormatError('qcow2 header is truncated');
    header.incompatibleFeatures = cluster0.readBigUInt64BE(72);
    header.compatibleFeatures = cluster0.readBigUInt64BE(80);
    header.autoclearFeatures = cluster0.readBigUInt64BE(88);
    header.refcountOrder = cluster0.readUInt32BE(96);
    header.headerLength = cluster0.readUInt32BE(100);
    if (header.headerLength < V3_MIN_HEADER_LENGTH || header.headerLength > cluster0.length) {
      throw new Qcow2FormatError('qcow2 header length is invalid');
    }
    header.extraHeader = Buffer.from(cluster0.subarray(V3_MIN_HEADER_LENGTH, header.headerLength));
  }
  const clusterSize = 2 ** clusterBits;
  if (header.cryptMethod !== 0) throw new Qcow2FormatError('Encrypted qcow2 images are not supported by qblockd');
  if (header.backingFileOffset !== 0) throw new Qcow2FormatError('qcow2 images with a backing file are not supported by qblockd');
  const unsupported = header.incompatibleFeatures & ~INCOMPAT_CORRUPT & ~INCOMPAT_COMPRESSION;
  if (unsupported & INCOMPAT_DIRTY) throw new Qcow2FormatError('qcow2 image has the dirty bit set; repair it with qemu-img check -r all first');
  if (unsupported & INCOMPAT_DATA_FILE) throw new Qcow2FormatError('qcow2 images with an external data file are not supported by qblockd');
  if (unsupported & INCOMPAT_EXTL2) throw new Qcow2FormatError('qcow2 images with extended L2 entries are not supported by qblockd');
  if (unsupported) throw new Qcow2FormatError(`Unsupported qcow2 feature(s): incompatible bits 0x${unsupported.toString(16)}`);
  if (header.incompatibleFeatures & INCOMPAT_COMPRESSION && header.headerLength > 104 && cluster0[104] !== 0) {
    throw new Qcow2FormatError('qcow2 compression type other than zlib is not supported by qblockd');
  }
  if (header.refcountOrder < 3 || header.refcountOrder > 6) {
    throw new Qcow2FormatError(`qcow2 refcount width of ${2 ** header.refcountOrder} bits is not supported by qblockd`);
  }
  for (const [what, offset] of [
    ['L1 table', header.l1TableOffset],
    ['refcount table', header.refcountTableOffset],
  ] as const) {
    if (offset % clusterSize !== 0 || offset === 0) throw new Qcow2FormatError(`qcow2: ${what} offset is invalid`);
    if (offset >= fileSize) throw new Qcow2FormatError(`qcow2: ${what} lies beyond the end of the image`);
  }
  header.extensions = parseExtensions(cluster0, header.headerLength, clusterSize);
  return header;
}

function parseExtensions(cluster0: Buffer, start: number, clusterSize: number): HeaderExtension[] {
  const extensions: HeaderExtension[] = [];
  let offset = start;
  for (;;) {
    if (offset + 8 > Math.min(cluster0.length, clusterSize)) throw new Qcow2FormatError('qcow2 header extensions are truncated');
    const type = cluster0.readUInt32BE(offset);
    const length = cluster0.readUInt32BE(offset + 4);
    if (type === EXT_END) return extensions;
    const dataEnd = offset + 8 + length;
    if (dataEnd > clusterSize) throw new Qcow2FormatError('qcow2 header extension is too large');
    extensions.push({ type, data: Buffer.from(cluster0.subarray(offset + 8, dataEnd)) });
    offset = offset + 8 + Math.ceil(length / 8) * 8;
  }
}

export function readBitmapsExtension(header: Qcow2Header): BitmapsExtension | null {
  const extension = header.extensions.find((candidate) => candidate.type === EXT_BITMAPS);
  if (!extension) return null;
  if (extension.data.length < 24) throw new Qcow2FormatError('qcow2: bitmaps extension is truncated');
  if (extension.data.readUInt32BE(4) !== 0) throw new Qcow2FormatError('qcow2: bitmaps extension has reserved bits set');
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
  out.writeBigUInt64BE(BigInt(header.backingFileOffset), 8);
  out.writeUInt32BE(header.backingFileSize, 16);
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
  return out.subarray(0, offset + 8);
}
