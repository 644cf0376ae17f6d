import { Qcow2FormatError } from './header.ts';

/** One bitmap directory entry (qcow2.txt, "Bitmap directory"). */
export interface BitmapDirectoryEntry {
  tableOffset: number;
  tableSize: number;
  flags: number;
  type: number;
  granularityBits: number;
  name: string;
  extraData: Buffer;
}

export const FLAG_IN_USE = 1 << 0;
export const FLAG_AUTO = 1 << 1;
export const FLAG_EXTRA_DATA_COMPATIBLE = 1 << 2;
const KNOWN_FLAGS = FLAG_IN_USE | FLAG_AUTO | FLAG_EXTRA_DATA_COMPATIBLE;
export const BITMAP_TYPE_DIRTY_TRACKING = 1;
export const MAX_BITMAPS = 65535;
export const MAX_NAME_SIZE = 1023;
export const MAX_DIRECTORY_SIZE = 1024 * MAX_BITMAPS;
export const MIN_GRANULARITY_BITS = 9;
export const MAX_GRANULARITY_BITS = 31;
/** QEMU keeps a bitmap in memory only below this many bytes of bits. */
export const MAX_PHYS_SIZE = 0x20000000;
const FIXED_ENTRY_SIZE = 24;

export function entrySize(nameLength: number, extraDataSize: number): number {
  return Math.ceil((FIXED_ENTRY_SIZE + extraDataSize + nameLength) / 8) * 8;
}

export function parseDirectory(buffer: Buffer, count: number): BitmapDirectoryEntry[] {
  const entries: BitmapDirectoryEntry[] = [];
  let offset = 0;
  for (let i = 0; i < count; i++) {
    if (offset + FIXED_ENTRY_SIZE > buffer.length) throw new Qcow2FormatError('qcow2: bitmap directory is truncated');
    const nameSize = buffer.readUInt16BE(offset + 18);
    const extraDataSize = buffer.readUInt32BE(offset + 20);
    const size = entrySize(nameSize, extraDataSize);
    if (offset + size > buffer.length) throw new Qcow2FormatError('qcow2: bitmap directory is truncated');
    const tableOffset = Number(buffer.readBigUInt64BE(offset));
    const entry: BitmapDirectoryEntry = {
      tableOffset,
      tableSize: buffer.readUInt32BE(offset + 8),
      flags: buffer.readUInt32BE(offset + 12) >>> 0,
      type: buffer[offset + 16]!,
      granularityBits: buffer[offset + 17]!,
      extraData: Buffer.from(buffer.subarray(offset + FIXED_ENTRY_SIZE, offset + FIXED_ENTRY_SIZE + extraDataSize)),
      name: buffer.subarray(offset + FIXED_ENTRY_SIZE + extraDataSize, offset + FIXED_ENTRY_SIZE + extraDataSize + nameSize).toString('utf8'),
    };
    checkEntry(entry, nameSize);
    entries.push(entry);
    offset += size;
  }
  return entries;
}

/** QEMU refuses an entry that breaks any of these with one text that names only the bitmap. */
function checkEntry(entry: BitmapDirectoryEntry, nameSize: number): void {
  const broken =
    entry.type !== BITMAP_TYPE_DIRTY_TRACKING ||
    (entry.flags & ~KNOWN_FLAGS) !== 0 ||
    entry.granularityBits < MIN_GRANULARITY_BITS ||
    entry.granularityBits > MAX_GRANULARITY_BITS ||
    nameSize === 0 ||
    nameSize > MAX_NAME_SIZE ||
    (entry.extraData.length > 0 && !(entry.flags & FLAG_EXTRA_DATA_COMPATIBLE)) ||
    entry.tableOffset % 512 !== 0;
  if (broken) throw new Qcow2FormatError(`Bitmap '${entry.name}' doesn't satisfy the constraints`);
}

export function serializeDirectory(entries: BitmapDirectoryEntry[]): Buffer {
  const size = entries.reduce((sum, entry) => sum + entrySize(Buffer.byteLength(entry.name), entry.extraData.length), 0);
  const out = Buffer.alloc(size);
  let offset = 0;
  for (const entry of entries) {
    const name = Buffer.from(entry.name, 'utf8');
    out.writeBigUInt64BE(BigInt(entry.tableOffset), offset);
    out.writeUInt32BE(entry.tableSize, offset + 8);
    out.writeUInt32BE(entry.flags >>> 0, offset + 12);
    out[offset + 16] = entry.type;
    out[offset + 17] = entry.granularityBits;
    out.writeUInt16BE(name.length, offset + 18);
    out.writeUInt32BE(entry.extraData.length, offset + 20);
    entry.extraData.copy(out, offset + FIXED_ENTRY_SIZE);
    name.copy(out, offset + FIXED_ENTRY_SIZE + entry.extraData.length);
    offset += entrySize(name.length, entry.extraData.length);
  }
  return out;
}
