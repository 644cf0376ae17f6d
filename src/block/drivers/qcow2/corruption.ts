/**
 * How a qcow2 image that lies about its own layout is caught: QEMU 7.2 opens
 * such images and checks each metadata write against the metadata it knows
 * (its default `overlap-check=cached`), and each table offset when it uses it.
 * A hit is a corruption: one BLOCK_IMAGE_CORRUPTED event, and on a writable
 * node the image is marked corrupt on disk and the node becomes unusable.
 */

export type MetadataSection = 'header' | 'activeL1' | 'refcountTable' | 'snapshotTable' | 'activeL2' | 'refcountBlock' | 'bitmapDirectory';

/** QEMU's names of the sections, as its event message gives them. */
const SECTION_NAMES: Record<MetadataSection, string> = {
  header: 'qcow2_header',
  activeL1: 'active L1 table',
  refcountTable: 'refcount table',
  snapshotTable: 'snapshot table',
  activeL2: 'active L2 table',
  refcountBlock: 'refcount block',
  bitmapDirectory: 'bitmap directory',
};

/** Where the image says its metadata is. Offsets are those of the header and tables, unchecked. */
export interface MetadataMap {
  clusterSize: number;
  l1TableOffset: number;
  l1Size: number;
  refcountTableOffset: number;
  refcountTableBytes: number;
  snapshotsOffset: number;
  snapshotsBytes: number;
  /** Host offsets of the active L2 tables (0: none). */
  l2Offsets(): Iterable<number>;
  /** Host offsets of the refcount blocks (0: none). */
  refcountBlockOffsets(): Iterable<number>;
  /** Only while the autoclear bit vouches for the bitmaps extension; {0, 0} when the extension is missing. */
  bitmapDirectory: { offset: number; size: number } | null;
}

/**
 * QEMU's range test. It computes in unsigned 64 bits, where a region of size
 * 0 ends just before its offset: at offset 0 it covers everything.
 */
function overlaps(start: number, length: number, regionOffset: number, regionSize: number): boolean {
  if (regionSize === 0 && regionOffset === 0) return true;
  return start < regionOffset + regionSize && start + length > regionOffset;
}

/**
 * The first metadata section a write of `size` bytes at `offset` would hit,
 * in QEMU's order; `ignore` is the section being written itself.
 */
export function overlappingSection(map: MetadataMap, offset: number, size: number, ignore?: MetadataSection): MetadataSection | null {
  if (size === 0) return null;
  const check = (section: MetadataSection) => section !== ignore;
  if (check('header') && offset < map.clusterSize) return 'header';
  const start = Math.floor(offset / map.clusterSize) * map.clusterSize;
  const length = Math.ceil(((offset % map.clusterSize) + size) / map.clusterSize) * map.clusterSize;
  const hits = (regionOffset: number, regionSize: number) => overlaps(start, length, regionOffset, regionSize);
  if (check('activeL1') && map.l1Size > 0 && hits(map.l1TableOffset, map.l1Size * 8)) return 'activeL1';
  if (check('refcountTable') && map.refcountTableBytes > 0 && hits(map.refcountTableOffset, map.refcountTableBytes)) return 'refcountTable';
  if (check('snapshotTable') && map.snapshotsBytes > 0 && hits(map.snapshotsOffset, map.snapshotsBytes)) return 'snapshotTable';
  if (check('activeL2')) {
    for (const l2 of map.l2Offsets()) if (l2 && hits(l2, map.clusterSize)) return 'activeL2';
  }
  if (check('refcountBlock')) {
    for (const block of map.refcountBlockOffsets()) if (block && hits(block, map.clusterSize)) return 'refcountBlock';
  }
  if (check('bitmapDirectory') && map.bitmapDirectory && hits(map.bitmapDirectory.offset, map.bitmapDirectory.size)) return 'bitmapDirectory';
  return null;
}

/** A corruption found in the middle of an operation: the operation stops and the driver signals it. */
export class Qcow2Corruption extends Error {
  override readonly name = 'Qcow2Corruption';

  constructor(
    message: string,
    /** The write or table that was refused, when there is one. */
    readonly offset?: number,
    readonly size?: number,
  ) {
    super(message);
  }
}

/** The repair of a dirty image met a corruption: the open fails, after the event. */
export class RepairFailure extends Error {
  override readonly name = 'RepairFailure';

  constructor(readonly corruption: Qcow2Corruption) {
    super('Could not repair dirty image: Input/output error');
  }
}

/** Throws the corruption QEMU signals before a metadata write that would hit other metadata. */
function checkMetadataWrite(map: MetadataMap, offset: number, size: number, ignore?: MetadataSection): void {
  const section = overlappingSection(map, offset, size, ignore);
  if (section) throw overlapCorruption(section, offset, size);
}

function overlapCorruption(section: MetadataSection, offset: number, size: number): Qcow2Corruption {
  return new Qcow2Corruption(`Preventing invalid write on metadata (overlaps with ${SECTION_NAMES[section]})`, offset, size);
}

/** printf's %#x: no prefix for zero. */
const hex = (value: number | bigint) => (BigInt(value) === 0n ? '0' : `0x${value.toString(16)}`);

/** The texts of QEMU's checks of a table offset when it is used. */
export const CORRUPTION_TEXTS = {
  unalignedL2: (l2Offset: number, l1Index: number) => `L2 table offset ${hex(l2Offset)} unaligned (L1 index: ${hex(l1Index)})`,
  unalignedRefcountBlock: (blockOffset: bigint, tableIndex: number) => `Refblock offset ${hex(blockOffset)} unaligned (reftable index: ${hex(tableIndex)})`,
  unalignedCluster: (host: number, l2Offset: number, l2Index: number) =>
    `Cluster allocation offset ${hex(host)} unaligned (L2 offset: ${hex(l2Offset)}, L2 index: ${hex(l2Index)})`,
  l2TableAtZero: 'Preventing invalid allocation of L2 table at offset 0',
};

/** BLOCK_IMAGE_CORRUPTED's data, its members in the order QEMU 7.2 prints them. */
/** The line QEMU's qcow2_signal_corruption prints on stderr before its event. */
export function corruptionReport(corruption: Qcow2Corruption, fatal: boolean): string {
  return fatal
    ? `qcow2: Marking image as corrupt: ${corruption.message}; further corruption events will be suppressed`
    : `qcow2: Image is corrupt: ${corruption.message}; further non-fatal corruption events will be suppressed`;
}

export function corruptionEventData(corruption: Qcow2Corruption, names: { device: string; nodeName: string }, fatal: boolean): Record<string, unknown> {
  return {
    device: names.device,
    msg: corruption.message,
    ...(corruption.offset === undefined ? {} : { offset: corruption.offset }),
    'node-name': names.nodeName,
    fatal,
    ...(corruption.size === undefined ? {} : { size: corruption.size }),
  };
}

/**
 * The overlap checks of one image, with QEMU's timing: tables it writes at
 * once are checked at once; tables it keeps in its caches (refcount blocks,
 * L2 tables) are checked when the cache is written back, so a write into
 * such a table that overlaps other metadata waits (unwritten) for the next
 * write-back point, where it becomes the corruption.
 */
export class MetadataGuard {
  private readonly waiting: Array<{ offset: number; section: MetadataSection; hit: MetadataSection }> = [];

  constructor(readonly map: MetadataMap) {}

  /** A write QEMU makes at once. */
  check(offset: number, size: number, ignore?: MetadataSection): void {
    checkMetadataWrite(this.map, offset, size, ignore);
  }

  /** Whether a change to the cached table at `tableOffset` may be written now; if not it waits for the next write-back. */
  mayWriteBack(tableOffset: number, section: 'refcountBlock' | 'activeL2'): boolean {
    const hit = overlappingSection(this.map, tableOffset, this.map.clusterSize, section);
    if (!hit) return true;
    if (!this.waiting.some((entry) => entry.offset === tableOffset && entry.section === section)) this.waiting.push({ offset: tableOffset, section, hit });
    return false;
  }

  /** QEMU writes its caches back: refcount blocks first (L2 tables depend on them), then L2 tables. */
  writeBack(): void {
    for (const section of ['refcountBlock', 'activeL2'] as const) {
      const entry = this.waiting.find((candidate) => candidate.section === section);
      if (!entry) continue;
      const hit = overlappingSection(this.map, entry.offset, this.map.clusterSize, section) ?? entry.hit;
      throw overlapCorruption(hit, entry.offset, this.map.clusterSize);
    }
  }
}
