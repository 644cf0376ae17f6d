import { EFBIG } from '../../../errno.ts';
import { BlockIoError } from '../../io-error.ts';
import type { ByteStore } from '../byte-store.ts';
import { CORRUPTION_TEXTS, Qcow2Corruption, type MetadataGuard } from './corruption.ts';
import type { Qcow2Header } from './header.ts';

/** QEMU's QCOW_MAX_REFTABLE_SIZE. */
const MAX_REFTABLE_SIZE = 8 * 1024 * 1024;

/** The offset bits of a refcount table entry; the low bits are reserved and, as in QEMU, ignored. */
const REFCOUNT_TABLE_OFFSET_MASK = 0xfffffffffffffe00n;

/**
 * The refcount table and blocks: which host clusters are in use. Writes go
 * straight to the store; callers order them with flushes so that a crash can
 * leak a cluster but never leave one referenced with refcount 0.
 */
export class RefcountManager {
  private readonly clusterSize: number;
  private readonly refcountBits: number;
  private readonly entriesPerBlock: number;
  private table: number[];
  private readonly blocks = new Map<number, Buffer>();
  private freeHint = 0;
  private usedEntries: number[] | null = null;
  /** Where the next compressed cluster's bytes go (0: start a fresh cluster). */
  private freeByteOffset = 0;
  private readonly maxRefcount: number;

  constructor(
    private readonly store: ByteStore,
    private readonly header: Qcow2Header,
    /** Rewrites the header after the refcount table moved. */
    private readonly writeHeader: () => void,
    private readonly guard?: MetadataGuard,
  ) {
    this.clusterSize = 2 ** header.clusterBits;
    this.refcountBits = 2 ** header.refcountOrder;
    this.entriesPerBlock = (this.clusterSize * 8) / this.refcountBits;
    this.maxRefcount = this.refcountBits >= 53 ? Number.MAX_SAFE_INTEGER : 2 ** this.refcountBits - 1;
    // Entries are taken as they are: QEMU checks a refcount block's offset only when it uses the block.
    const tableBytes = header.refcountTableClusters * this.clusterSize;
    const raw = this.readExact(header.refcountTableOffset, tableBytes);
    this.table = [];
    for (let i = 0; i < tableBytes / 8; i++) this.table.push(Number(raw.readBigUInt64BE(i * 8) & REFCOUNT_TABLE_OFFSET_MASK));
  }

  /** Host offsets of the refcount blocks up to the last one there is (the overlap checks run through them on every write). */
  blockOffsets(): readonly number[] {
    if (!this.usedEntries) {
      let end = this.table.length;
      while (end > 0 && !this.table[end - 1]) end--;
      this.usedEntries = this.table.slice(0, end);
    }
    return this.usedEntries;
  }

  get(cluster: number): number {
    const block = this.block(Math.floor(cluster / this.entriesPerBlock));
    return block ? this.readEntry(block, cluster % this.entriesPerBlock) : 0;
  }

  /** Sets one cluster's refcount; false when no refcount block covers it. */
  setCount(cluster: number, value: number): boolean {
    if (!this.block(Math.floor(cluster / this.entriesPerBlock))) return false;
    this.set(cluster, value);
    if (value === 0) this.freeHint = Math.min(this.freeHint, cluster);
    return true;
  }

  /**
   * Finds `count` contiguous free clusters, marks them used and returns the
   * first one's byte offset. Cluster 0 is free only in an image whose
   * refcounts count nothing: `atClusterZero` throws the corruption QEMU
   * signals for what the caller was about to write there (by default the
   * write's overlap with the header).
   */
  allocate(count: number, atClusterZero: () => void = () => this.guard?.check(0, count * this.clusterSize)): number {
    for (;;) {
      const start = this.findFreeRun(count);
      // QEMU's free-cluster index has passed the run: a refcount block the run needs goes after it.
      this.freeHint = start + count;
      const missing = this.firstUncoveredBlock(start, count);
      if (missing === null) {
        if (start === 0) atClusterZero();
        this.setRun(start, count, 1);
        return start * this.clusterSize;
      }
      this.createBlock(missing);
      // QEMU's update_refcount gives up on the run once it has made a block (-EAGAIN), takes back
      // the counts it had set and tries the same clusters again from the run's start. A refcount
      // table that counted nothing: once its first block is hooked up the search starts over.
      this.freeHint = missing === 0 ? 0 : start;
    }
  }

  /**
   * As many of the `count` clusters from `first` on as are free, up to the first one in
   * use, marked used: QEMU's qcow2_alloc_clusters_at, with which a write carries its host
   * run on. Returns how many (0 when `first` is in use). A refcount block the clusters need
   * is made as `allocate` makes it, with the clusters before its range counted meanwhile
   * (QEMU counts them, then takes the counts back and looks again), so the block may land
   * in the run and cut it short.
   */
  allocateAt(first: number, count: number): number {
    for (;;) {
      let free = 0;
      while (free < count && this.get(first + free) === 0) free++;
      const missing = free === 0 ? null : this.firstUncoveredBlock(first, free);
      if (missing === null) {
        this.setRun(first, free, 1);
        return free;
      }
      const counted = missing * this.entriesPerBlock - first;
      if (counted > 0) this.setRun(first, counted, 1);
      this.createBlock(missing);
      if (counted > 0) this.setRun(first, counted, 0);
      this.freeHint = Math.min(this.freeHint, first);
    }
  }

  /**
   * Room for `size` bytes (a compressed cluster, less than a cluster), packed
   * right after the bytes allocated before, as qcow2_alloc_bytes does: the
   * same host cluster while it has room (a fresh one that follows it may take
   * the rest), else the first free cluster. Every cluster the bytes touch
   * gains one reference.
   */
  allocateBytes(size: number): number {
    let offset = this.freeByteOffset;
    if (offset && this.get(Math.floor(offset / this.clusterSize)) >= this.maxRefcount) offset = 0;
    const freeInCluster = offset ? this.clusterSize - (offset % this.clusterSize) : 0;
    if (!offset || freeInCluster < size) {
      const cluster = this.firstFreeCoveredCluster();
      if (!offset || Math.ceil(offset / this.clusterSize) !== cluster) offset = cluster * this.clusterSize;
    }
    const first = Math.floor(offset / this.clusterSize);
    const last = Math.floor((offset + size - 1) / this.clusterSize);
    for (let cluster = first; cluster <= last; cluster++) {
      const missing = this.firstUncoveredBlock(cluster, 1);
      if (missing !== null) this.createBlock(missing);
      this.set(cluster, this.get(cluster) + 1);
    }
    this.freeByteOffset = (offset + size) % this.clusterSize ? offset + size : 0;
    return offset;
  }

  private firstFreeCoveredCluster(): number {
    for (;;) {
      const cluster = this.findFreeRun(1);
      const missing = this.firstUncoveredBlock(cluster, 1);
      if (missing === null) return cluster;
      this.freeHint = cluster + 1;
      this.createBlock(missing);
    }
  }

  /** Drops one reference from each cluster of [offset, offset + bytes). */
  free(offset: number, bytes: number): void {
    const first = Math.floor(offset / this.clusterSize);
    const end = Math.ceil((offset + bytes) / this.clusterSize);
    for (let cluster = first; cluster < end; cluster++) {
      const current = this.get(cluster);
      if (current > 0) this.set(cluster, current - 1);
      if (current === 1) this.freeHint = Math.min(this.freeHint, cluster);
    }
  }

  /**
   * The last step of a shrink, as QEMU's qcow2_shrink_reftable: a refcount block that
   * counts no cluster but its own leaves the table, and the whole table is written
   * again and flushed, whether an entry changed or not. A block left out is then
   * dropped: its own count goes with it, or the block that counts it counts it no more.
   */
  shrinkTable(): void {
    const kept = this.table.map((offset, index) => (offset && this.countsOthers(index, offset) ? offset : 0));
    this.store.pwrite(encodeTable(kept), this.header.refcountTableOffset);
    this.store.flush();
    for (const [index, offset] of this.table.entries()) {
      if (!offset || kept[index]) continue;
      const cluster = offset / this.clusterSize;
      if (Math.floor(cluster / this.entriesPerBlock) !== index) this.free(offset, this.clusterSize);
      this.table[index] = 0;
      this.blocks.delete(index);
      this.usedEntries = null;
      this.freeHint = Math.min(this.freeHint, cluster);
    }
  }

  /** Whether refcount block `index` (at `offset`) counts any cluster but itself. */
  private countsOthers(index: number, offset: number): boolean {
    const block = this.block(index)!;
    const cluster = offset / this.clusterSize;
    const own = Math.floor(cluster / this.entriesPerBlock) === index ? cluster % this.entriesPerBlock : -1;
    for (let entry = 0; entry < this.entriesPerBlock; entry++) {
      if (entry !== own && this.readEntry(block, entry) !== 0) return true;
    }
    return false;
  }

  private findFreeRun(count: number): number {
    let start = this.freeHint;
    let run = 0;
    for (let cluster = this.freeHint; ; cluster++) {
      if (this.get(cluster) === 0) {
        if (run === 0) start = cluster;
        if (++run === count) return start;
      } else {
        run = 0;
      }
    }
  }

  private firstUncoveredBlock(start: number, count: number): number | null {
    const first = Math.floor(start / this.entriesPerBlock);
    const last = Math.floor((start + count - 1) / this.entriesPerBlock);
    for (let index = first; index <= last; index++) if (!this.table[index]) return index;
    return null;
  }

  private set(cluster: number, value: number): void {
    const index = Math.floor(cluster / this.entriesPerBlock);
    const block = this.block(index);
    if (!block) throw new Error(`refcount block ${index} missing`);
    const entry = cluster % this.entriesPerBlock;
    this.writeEntry(block, entry, value);
    this.writeBack(index, block, entry, entry + 1);
  }

  /** Writes the bytes holding entries [first, end) of refcount block `index`. */
  private writeBack(index: number, block: Buffer, first: number, end: number): void {
    if (this.guard?.mayWriteBack(this.table[index]!, 'refcountBlock') === false) return;
    const from = Math.floor((first * this.refcountBits) / 8);
    const to = Math.ceil((end * this.refcountBits) / 8);
    this.store.pwrite(block.subarray(from, to), this.table[index]! + from);
  }

  /** Sets [start, start+count) to `value`, one write per refcount block touched. */
  private setRun(start: number, count: number, value: number): void {
    for (let cluster = start; cluster < start + count; ) {
      const index = Math.floor(cluster / this.entriesPerBlock);
      const block = this.block(index);
      if (!block) throw new Error(`refcount block ${index} missing`);
      const first = cluster % this.entriesPerBlock;
      const end = Math.min(this.entriesPerBlock, first + (start + count - cluster));
      for (let entry = first; entry < end; entry++) this.writeEntry(block, entry, value);
      this.writeBack(index, block, first, end);
      cluster += end - first;
    }
  }

  /**
   * A new refcount block, where QEMU's alloc_refcount_block puts it: in the first
   * free cluster from the free-cluster index on (a cluster no block covers counts as
   * free), which then moves past it. A block inside the range it covers counts
   * itself; one outside is counted by the block of its own range (made first, the
   * same way, if there is none). A block past the end of the refcount table goes
   * into a new, larger table (`growTable`).
   */
  private createBlock(index: number): void {
    if (this.table[index]) return;
    const cluster = this.findFreeRun(1);
    this.freeHint = cluster + 1;
    this.guard?.check(cluster * this.clusterSize, this.clusterSize, 'refcountBlock');
    const block = Buffer.alloc(this.clusterSize);
    const coveringIndex = Math.floor(cluster / this.entriesPerBlock);
    if (coveringIndex === index) {
      this.writeEntry(block, cluster % this.entriesPerBlock, 1);
    } else {
      this.createBlock(coveringIndex);
      this.set(cluster, 1);
      this.store.flush();
    }
    this.store.pwrite(block, cluster * this.clusterSize);
    this.store.flush();
    if (index >= this.table.length) {
      // Everything counted so far lies below the last range the table or the new block reaches.
      this.growTable((Math.max(index, coveringIndex) + 1) * this.entriesPerBlock, index, cluster * this.clusterSize, block);
      return;
    }
    // The table entry is written (without an overlap check, as QEMU) before the block counts as there.
    this.writeTableEntry(index, cluster * this.clusterSize);
    this.table[index] = cluster * this.clusterSize;
    this.usedEntries = null;
    this.blocks.set(index, block);
    this.store.flush();
  }

  /**
   * A new refcount table, with `newBlock` (at `newBlockOffset`) hooked up at `newIndex`, as
   * QEMU's qcow2_refcount_area lays it out from cluster `areaStart` on (the start of a range,
   * past everything counted): refcount blocks for the ranges from there up to what the
   * table must count (with half as many again to spare), then the table itself, 50% larger
   * than that, all counted by those new blocks. Then the header, and only then is the old
   * table freed.
   */
  private growTable(areaStart: number, newIndex: number, newBlockOffset: number, newBlock: Buffer): void {
    const entriesPerCluster = this.clusterSize / 8;
    const totalBlocks = refcountBlocksCovering(areaStart, this.clusterSize, this.refcountBits);
    const tableEntries = Math.ceil((totalBlocks + Math.ceil(totalBlocks / 2)) / entriesPerCluster) * entriesPerCluster;
    // QEMU compares both counts with QCOW_MAX_REFTABLE_SIZE, a size in bytes, as counts of entries.
    if (totalBlocks > MAX_REFTABLE_SIZE || tableEntries > MAX_REFTABLE_SIZE) throw new BlockIoError(EFBIG);
    const tableClusters = tableEntries / entriesPerCluster;
    const newTable = Array.from({ length: tableEntries }, (_, i) => this.table[i] ?? 0);
    newTable[newIndex] = newBlockOffset;
    const areaIndex = areaStart / this.entriesPerBlock;
    const areaBlocks = totalBlocks - areaIndex;
    const tableCluster = areaStart + areaBlocks;
    const areaEnd = tableCluster + tableClusters;
    const blocks = new Map([[newIndex, newBlock]]);
    for (let i = 0; i < areaBlocks; i++) {
      const block = Buffer.alloc(this.clusterSize);
      const covered = (areaIndex + i) * this.entriesPerBlock;
      for (let entry = 0; entry < Math.min(areaEnd - covered, this.entriesPerBlock); entry++) this.writeEntry(block, entry, 1);
      this.store.pwrite(block, (areaStart + i) * this.clusterSize);
      newTable[areaIndex + i] = (areaStart + i) * this.clusterSize;
      blocks.set(areaIndex + i, block);
    }
    this.store.flush();
    this.store.pwrite(encodeTable(newTable), tableCluster * this.clusterSize);
    this.store.flush();
    const oldOffset = this.header.refcountTableOffset;
    const oldClusters = this.header.refcountTableClusters;
    this.header.refcountTableOffset = tableCluster * this.clusterSize;
    this.header.refcountTableClusters = tableClusters;
    this.writeHeader();
    this.store.flush();
    this.table = newTable;
    this.usedEntries = null;
    for (const [index, block] of blocks) this.blocks.set(index, block);
    this.free(oldOffset, oldClusters * this.clusterSize);
  }

  private writeTableEntry(index: number, offset: number): void {
    const entry = Buffer.alloc(8);
    entry.writeBigUInt64BE(BigInt(offset));
    this.store.pwrite(entry, this.header.refcountTableOffset + index * 8);
  }

  private block(index: number): Buffer | undefined {
    const offset = this.table[index];
    if (!offset) return undefined;
    let block = this.blocks.get(index);
    if (!block) {
      if (offset % this.clusterSize !== 0) throw new Qcow2Corruption(CORRUPTION_TEXTS.unalignedRefcountBlock(BigInt(offset), index));
      block = this.readExact(offset, this.clusterSize);
      this.blocks.set(index, block);
    }
    return block;
  }

  /** Entries narrower than a byte are packed from the byte's lowest bit up, as qcow2 specifies. */
  private readEntry(block: Buffer, entry: number): number {
    switch (this.refcountBits) {
      case 1:
      case 2:
      case 4: {
        const perByte = 8 / this.refcountBits;
        return (block[Math.floor(entry / perByte)]! >> ((entry % perByte) * this.refcountBits)) & this.maxRefcount;
      }
      case 8:
        return block[entry]!;
      case 16:
        return block.readUInt16BE(entry * 2);
      case 32:
        return block.readUInt32BE(entry * 4);
      default:
        return Number(block.readBigUInt64BE(entry * 8));
    }
  }

  private writeEntry(block: Buffer, entry: number, value: number): void {
    switch (this.refcountBits) {
      case 1:
      case 2:
      case 4: {
        const perByte = 8 / this.refcountBits;
        const byte = Math.floor(entry / perByte);
        const shift = (entry % perByte) * this.refcountBits;
        block[byte] = (block[byte]! & ~(this.maxRefcount << shift)) | (value << shift);
        break;
      }
      case 8:
        block[entry] = value;
        break;
      case 16:
        block.writeUInt16BE(value, entry * 2);
        break;
      case 32:
        block.writeUInt32BE(value, entry * 4);
        break;
      default:
        block.writeBigUInt64BE(BigInt(value), entry * 8);
    }
  }

  private readExact(offset: number, length: number): Buffer {
    const buffer = Buffer.alloc(length);
    this.store.pread(buffer, offset);
    return buffer;
  }
}

/**
 * How many refcount blocks count `clusters` clusters and the refcount metadata itself,
 * with half the table's clusters again to spare, as QEMU's qcow2_refcount_metadata_size
 * sizes a table that grows (its fixed point: blocks and table clusters that count
 * themselves too).
 */
function refcountBlocksCovering(clusters: number, clusterSize: number, refcountBits: number): number {
  const entriesPerBlock = (clusterSize * 8) / refcountBits;
  const entriesPerTableCluster = clusterSize / 8;
  let counted = clusters;
  let spareAdded = false;
  let blocks = 0;
  let tableClusters = 0;
  let total = 0;
  for (;;) {
    const last = total;
    blocks = Math.ceil((counted + tableClusters + blocks) / entriesPerBlock);
    tableClusters = Math.ceil(blocks / entriesPerTableCluster);
    total = counted + blocks + tableClusters;
    if (total !== last) continue;
    if (spareAdded) return blocks;
    counted += Math.ceil(tableClusters / 2);
    spareAdded = true;
    total = 0;
  }
}

function encodeTable(entries: number[]): Buffer {
  const out = Buffer.alloc(entries.length * 8);
  entries.forEach((offset, i) => out.writeBigUInt64BE(BigInt(offset), i * 8));
  return out;
}
