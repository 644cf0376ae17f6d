import type { Hash } from 'node:crypto';
import os from 'node:os';
import { lazyCrypto } from '../builtins.ts';
import { FULL, PAGE_BITS, PAGE_WORDS, PageTable, type Page } from './page-table.ts';

const PAGE_BYTES = PAGE_BITS / 8;
/** Bytes per hash update: SHA-256 reaches its full speed only on large inputs. */
const HASH_RUN_BYTES = 1 << 20;
/** Fills at least this long are hashed straight from the shared buffers: one more hash update costs less than copying them. */
const DIRECT_FILL_BYTES = 4096;
const ZEROES = Buffer.alloc(HASH_RUN_BYTES);
let onesBuffer: Buffer | undefined;
/** HASH_RUN_BYTES of 0xff, made on first use so an idle daemon does not hold them. */
const ONES = () => (onesBuffer ??= Buffer.alloc(HASH_RUN_BYTES, 0xff));

// Pages are hashed by viewing their words as bytes, which gives the serialized (little-endian) layout only here.
if (os.endianness() !== 'LE') throw new Error('qblockd needs a little-endian host');

/**
 * What a bitmap looked like before a transaction action changed it: the
 * original of every page changed since (recorded once, before the first
 * change), or the whole page table as it was when it was replaced at once
 * or when copying it was cheaper than recording a wide change page by page.
 */
export interface BitmapUndo {
  readonly setChunks: number;
  readonly pages: Map<number, Page | undefined>;
  replacedTable?: PageTable;
}

export function popcount32(word: number): number {
  word -= (word >>> 1) & 0x55555555;
  word = (word & 0x33333333) + ((word >>> 2) & 0x33333333);
  return (Math.imul((word + (word >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) as number;
}

/** Mask of bits [from, to) within one 32-bit word, 0 <= from < to <= 32. */
function wordMask(from: number, to: number): number {
  const high = to === 32 ? 0xffffffff : ((1 << to) - 1) >>> 0;
  const low = ((1 << from) - 1) >>> 0;
  return (high & ~low) >>> 0;
}

/**
 * The bits of one dirty bitmap: a sparse paged bitset whose memory follows
 * what is dirty, with an O(1) population count. Bit i is chunk i, chunk i
 * covers bytes [i*granularity, (i+1)*granularity).
 */
export class BitmapData {
  diskSize: number;
  readonly granularity: number;
  chunkCount: number;
  private pageCount: number;
  private table = new PageTable();
  private setChunks = 0;
  /** Undo records of the transaction actions still pending on this bitmap. */
  private undoRecords: BitmapUndo[] = [];
  private edits = 0;

  constructor(options: { diskSize: number; granularity: number }) {
    this.diskSize = options.diskSize;
    this.granularity = options.granularity;
    this.chunkCount = Math.ceil(options.diskSize / options.granularity);
    this.pageCount = Math.ceil(this.chunkCount / PAGE_BITS);
  }

  /** QEMU's `count`: dirty chunks times the granularity. */
  dirtyBytes(): number {
    return this.setChunks * this.granularity;
  }

  setChunkCount(): number {
    return this.setChunks;
  }

  /** Grows with every change of the bits, also one that leaves the count as it was (watchers compare it). */
  get version(): number {
    return this.edits;
  }

  /** Marks every chunk that [offset, offset+length) touches. */
  markRange(offset: number, length: number): void {
    if (length <= 0 || offset >= this.diskSize) return;
    this.edits++;
    const end = Math.min(offset + length, this.diskSize);
    this.setChunkRange(Math.floor(offset / this.granularity), Math.ceil(end / this.granularity));
  }

  /** Clears the chunks fully inside [offset, offset+length); the disk's tail counts as covering the last chunk. */
  resetRange(offset: number, length: number): void {
    this.edits++;
    const end = Math.min(offset + length, this.diskSize);
    const first = Math.ceil(offset / this.granularity);
    const last = end === this.diskSize ? this.chunkCount : Math.floor(end / this.granularity);
    if (last > first) this.clearChunkRange(first, last);
  }

  clearAll(): void {
    this.edits++;
    for (const undo of this.undoRecords) undo.replacedTable ??= this.table;
    this.table = new PageTable();
    this.setChunks = 0;
  }

  /**
   * The disk was resized: growing adds clean chunks, shrinking drops the bits past the new end.
   * A partial last page that is the FULL sentinel is spelled out first, since after a change of
   * length the sentinel would mean a different number of bits.
   */
  resize(diskSize: number): void {
    this.edits++;
    const chunkCount = Math.ceil(diskSize / this.granularity);
    const pageCount = Math.ceil(chunkCount / PAGE_BITS);
    if (chunkCount < this.chunkCount) this.clearChunkRange(chunkCount, this.chunkCount);
    for (const index of new Set([this.pageCount - 1, pageCount - 1])) {
      if (index >= 0 && this.table.get(index) === FULL) this.table.set(index, fullPage(this.pageLength(index)));
    }
    this.diskSize = diskSize;
    this.chunkCount = chunkCount;
    this.pageCount = pageCount;
    const lastIndex = pageCount - 1;
    const last = this.table.get(lastIndex);
    if (last && last !== FULL && isFullPage(last, this.pageLength(lastIndex))) this.table.set(lastIndex, FULL);
  }

  /** An independent copy; full pages stay shared, since they are never written. */
  snapshot(): BitmapData {
    const copy = new BitmapData({ diskSize: this.diskSize, granularity: this.granularity });
    copy.restoreFrom(this);
    return copy;
  }

  /** Takes `other`'s bits (copied); a pending undo record keeps the page table it replaces. */
  restoreFrom(other: BitmapData): void {
    this.edits++;
    this.copyBitsOf(other);
  }

  private copyBitsOf(other: BitmapData): void {
    for (const undo of this.undoRecords) undo.replacedTable ??= this.table;
    this.table = other.table.clone();
    this.setChunks = other.setChunks;
  }

  /** Starts recording what changes, so that rollBack() can restore this moment exactly. */
  recordUndo(): BitmapUndo {
    const undo: BitmapUndo = { setChunks: this.setChunks, pages: new Map() };
    this.undoRecords.push(undo);
    return undo;
  }

  /** The change is final: stop recording for it. */
  forgetUndo(undo: BitmapUndo): void {
    this.undoRecords = this.undoRecords.filter((record) => record !== undo);
  }

  /** Restores the bits as they were when `undo` started; pending records roll back newest first. */
  rollBack(undo: BitmapUndo): void {
    this.edits++;
    this.forgetUndo(undo);
    const table = undo.replacedTable ?? this.table;
    for (const [index, page] of undo.pages) table.set(index, page);
    this.table = table;
    this.setChunks = undo.setChunks;
  }

  /** Called before page `index` changes: each pending record keeps its first original. */
  private recordPage(index: number): void {
    this.recordPages(index, index + 1);
  }

  /** Called before pages [from, to) change: each pending record keeps their first originals, or the whole table when that is cheaper. */
  private recordPages(from: number, to: number): void {
    for (const undo of this.undoRecords) {
      if (undo.replacedTable) continue;
      if (to - from > this.table.entries) {
        undo.replacedTable = this.table.clone();
        continue;
      }
      for (let index = from; index < to; index++) {
        if (undo.pages.has(index)) continue;
        const page = this.table.get(index);
        undo.pages.set(index, page === undefined || page === FULL ? page : page.slice());
      }
    }
  }

  isDirty(offset: number): boolean {
    return this.getChunk(Math.floor(offset / this.granularity));
  }

  getChunk(chunk: number): boolean {
    const page = this.table.get(Math.floor(chunk / PAGE_BITS));
    if (!page) return false;
    if (page === FULL) return true;
    const bit = chunk % PAGE_BITS;
    return ((page[bit >>> 5]! >>> (bit & 31)) & 1) === 1;
  }

  /** ORs `source` into this bitmap; granularities may differ, sizes must match (the caller says so). */
  mergeFrom(source: BitmapData): void {
    this.edits++;
    if (source === this) return;
    if (source.granularity === this.granularity) {
      if (this.setChunks === 0) return this.copyBitsOf(source);
      const spans: Array<[number, number, Page | null]> = [];
      source.table.forEachSpan(0, source.pageCount, (index, end, words) => {
        spans.push([index, end, words]);
      });
      for (const [index, end, words] of spans) {
        if (words) this.orPage(index, words);
        else this.fillPages(index, end, true);
      }
      return;
    }
    for (const [first, end] of source.dirtyRuns()) {
      this.markRange(first * source.granularity, (end - first) * source.granularity);
    }
  }

  /** Maximal runs [first, end) of set chunks, ascending, clipped to chunks [from, to). */
  dirtyRuns(from = 0, to = this.chunkCount): Array<[number, number]> {
    const runs: Array<[number, number]> = [];
    this.forEachRun(from, to, (first, end, dirty) => {
      if (dirty) runs.push([first, end]);
    });
    return runs;
  }

  /**
   * Visits chunks [from, to) as maximal runs [first, end) of clean and dirty chunks
   * alternately, ascending, until `visit` returns true. Runs of full pages and the
   * clean stretches between stored pages cost one step each; only mixed pages are
   * searched, a word at a time.
   */
  forEachRun(from: number, to: number, visit: (first: number, end: number, dirty: boolean) => boolean | void): void {
    to = Math.min(to, this.chunkCount);
    if (to <= from) return;
    let runStart = from;
    let runDirty = false;
    let at = from;
    let stopped = false;
    /** Extends what is walked to `end` with chunks of one state; true once `visit` asked to stop. */
    const reach = (end: number, dirty: boolean): boolean => {
      if (end <= at) return false;
      if (dirty !== runDirty && at > runStart) {
        stopped = visit(runStart, at, runDirty) === true;
        if (stopped) return true;
        runStart = at;
      }
      runDirty = dirty;
      at = end;
      return false;
    };
    this.forEachDirtySpan(from, to, (spanFirst, length, words) => {
      const spanEnd = Math.min(spanFirst + length, to);
      if (reach(Math.max(spanFirst, from), false)) return true;
      if (words === null) return reach(spanEnd, true);
      while (at < spanEnd) {
        const dirtyFrom = spanFirst + nextBit(words, at - spanFirst, spanEnd - spanFirst, true);
        if (reach(dirtyFrom, false)) return true;
        if (dirtyFrom === spanEnd) break;
        if (reach(spanFirst + nextBit(words, dirtyFrom - spanFirst, spanEnd - spanFirst, false), true)) return true;
      }
      return false;
    });
    if (stopped || reach(to, false)) return;
    visit(runStart, at, runDirty);
  }

  /**
   * SHA-256 of the bits as 64-bit little-endian words, as x-debug-block-dirty-bitmap-sha256
   * hashes them: clean stretches and runs of full pages come from shared buffers, mixed
   * pages are copied word-for-word into a staging run (see RunHasher).
   */
  sha256(): string {
    const hash = new RunHasher(lazyCrypto().createHash('sha256'));
    const totalBytes = Math.ceil(this.chunkCount / 64) * 8;
    const lastPageLength = this.pageLength(this.pageCount - 1);
    let hashed = 0;
    this.table.forEachSpan(0, this.pageCount, (index, end, words) => {
      const spanAt = index * PAGE_BYTES;
      hash.fill(0, spanAt - hashed);
      hashed = Math.min(end * PAGE_BYTES, totalBytes);
      // The last page is short when the disk is not a whole number of pages: its tail is clean.
      const partialTail = end === this.pageCount && lastPageLength < PAGE_BITS;
      const fullEnd = partialTail && words === null ? end - 1 : end;
      if (words === null) hash.fill(0xff, fullEnd * PAGE_BYTES - spanAt);
      if (words === null && !partialTail) return;
      const tail = words ?? fullPage(lastPageLength);
      const tailAt = (words === null ? fullEnd : index) * PAGE_BYTES;
      hash.copy(new Uint8Array(tail.buffer, tail.byteOffset, hashed - tailAt));
    });
    hash.fill(0, totalBytes - hashed);
    return hash.digest();
  }

  serializedByteLength(): number {
    return Math.ceil(this.chunkCount / 8);
  }

  /** Whether any chunk in serialized bytes [byteOffset, byteOffset+byteLength) is dirty. */
  anyDirtyInSerialized(byteOffset: number, byteLength: number): boolean {
    const firstChunk = byteOffset * 8;
    const endChunk = Math.min(this.chunkCount, (byteOffset + byteLength) * 8);
    let found = false;
    this.forEachDirtySpan(firstChunk, endChunk, (spanFirst, length, words) => {
      const from = Math.max(firstChunk, spanFirst) - spanFirst;
      const to = Math.min(endChunk, spanFirst + length) - spanFirst;
      found = words === null ? to > from : wordsHaveBitsIn(words, from, to);
      return found;
    });
    return found;
  }

  /**
   * Visits the stored spans overlapping chunks [first, end) in ascending order, with
   * the first chunk and length in chunks of each: one page with some bits set and its
   * words, or a run of full pages (words null). What is not visited is clean. Lets
   * summaries (bitmap/density.ts) read the page structure. Returning true stops.
   */
  forEachDirtySpan(first: number, end: number, visit: (firstChunk: number, length: number, words: Uint32Array | null) => boolean | void): void {
    if (end <= first) return;
    this.table.forEachSpan(Math.floor(first / PAGE_BITS), Math.floor((end - 1) / PAGE_BITS) + 1, (index, spanEnd, words) => {
      const spanFirst = index * PAGE_BITS;
      return visit(spanFirst, Math.min(spanEnd * PAGE_BITS, this.chunkCount) - spanFirst, words);
    });
  }

  /** Copies bits [8*byteOffset, 8*(byteOffset+byteLength)) into `out` (zero past the end) and classifies them. */
  readSerialized(byteOffset: number, byteLength: number, out: Buffer): 'zero' | 'ones' | 'mixed' {
    const firstChunk = byteOffset * 8;
    const endChunk = Math.min(this.chunkCount, (byteOffset + byteLength) * 8);
    const firstPage = Math.floor(firstChunk / PAGE_BITS);
    const lastPage = Math.floor((Math.max(endChunk, firstChunk + 1) - 1) / PAGE_BITS);
    let anyPage = false;
    let allFull = endChunk > firstChunk;
    for (let index = firstPage; index <= lastPage; index++) {
      const page = this.table.get(index);
      if (page) anyPage = true;
      if (page !== FULL) allFull = false;
    }
    out.fill(0, 0, byteLength);
    if (!anyPage) return 'zero';
    // byteOffset is a multiple of 8, so pages and output words line up on 32-bit boundaries.
    let set = 0;
    for (let chunk = firstChunk; chunk < endChunk; ) {
      const index = Math.floor(chunk / PAGE_BITS);
      const pageEnd = Math.min((index + 1) * PAGE_BITS, endChunk);
      const page = this.table.get(index);
      if (page) {
        for (let bit = chunk; bit < pageEnd; bit += 32) {
          const bits = Math.min(32, pageEnd - bit);
          const inPage = bit - index * PAGE_BITS;
          let word = page === FULL ? 0xffffffff : page[inPage >>> 5]!;
          if (bits < 32) word = (word & wordMask(0, bits)) >>> 0;
          if (word !== 0) {
            const at = (bit - firstChunk) >>> 3;
            if (at + 4 <= out.length) out.writeUInt32LE(word, at);
            else for (let byte = 0; at + byte < out.length; byte++) out[at + byte] = (word >>> (8 * byte)) & 0xff;
            set += word === 0xffffffff ? 32 : popcount32(word);
          }
        }
      }
      chunk = pageEnd;
    }
    if (set === 0) return 'zero';
    if (allFull || set === endChunk - firstChunk) return 'ones';
    return 'mixed';
  }

  /**
   * Loads serialized bits (overwriting), ignoring bits past the last chunk.
   * `byteOffset` must be a multiple of 4, as qcow2 cluster offsets always are.
   */
  writeSerialized(byteOffset: number, data: Buffer): void {
    this.edits++;
    if (byteOffset % 4 !== 0) throw new RangeError(`serialized bitmap offset ${byteOffset} is not 32-bit aligned`);
    const firstChunk = byteOffset * 8;
    const endChunk = Math.min(this.chunkCount, firstChunk + data.length * 8);
    this.forEachPage(firstChunk, endChunk, (index, from, to, pageLength) => {
      const pageStart = index * PAGE_BITS;
      if (from === 0 && to === pageLength) {
        const uniform = uniformBits(data.subarray((pageStart - firstChunk) >>> 3, (pageStart - firstChunk + pageLength + 7) >>> 3), pageLength);
        if (uniform !== undefined) return this.fillPages(index, index + 1, uniform);
      }
      this.editPage(index, pageLength, (words) => {
        applyBits(words, from, to, false);
        for (let w = from >>> 5; w * 32 < to; w++) {
          const byteAt = (pageStart + w * 32 - firstChunk) >>> 3;
          let word = byteAt + 4 <= data.length ? data.readUInt32LE(byteAt) : readPartialWordLE(data, byteAt);
          if (to - w * 32 < 32) word = (word & wordMask(0, to - w * 32)) >>> 0;
          words[w] = (words[w]! | word) >>> 0;
        }
      });
    });
  }

  /** Marks every chunk covered by a serialized range (qcow2's all-ones table entry). */
  fillSerialized(byteOffset: number, byteLength: number): void {
    this.edits++;
    this.setChunkRange(byteOffset * 8, Math.min(this.chunkCount, (byteOffset + byteLength) * 8));
  }

  private pageLength(index: number): number {
    return Math.min(PAGE_BITS, this.chunkCount - index * PAGE_BITS);
  }

  private setChunkRange(first: number, end: number): void {
    this.updateRange(first, end, true);
  }

  private clearChunkRange(first: number, end: number): void {
    this.updateRange(first, end, false);
  }

  private updateRange(first: number, end: number, set: boolean): void {
    first = Math.max(0, first);
    end = Math.min(end, this.chunkCount);
    if (end <= first) return;
    const firstWhole = Math.ceil(first / PAGE_BITS);
    const endWhole = end === this.chunkCount ? this.pageCount : Math.floor(end / PAGE_BITS);
    if (endWhole <= firstWhole) {
      this.editBits(first, end, set);
      return;
    }
    this.editBits(first, firstWhole * PAGE_BITS, set);
    this.fillPages(firstWhole, endWhole, set);
    this.editBits(endWhole * PAGE_BITS, end, set);
  }

  /** Sets or clears chunks [first, end) page by page (at most two partial pages). */
  private editBits(first: number, end: number, set: boolean): void {
    this.forEachPage(first, end, (index, from, to, pageLength) => {
      if (from === 0 && to === pageLength) this.fillPages(index, index + 1, set);
      else if (set ? this.table.get(index) !== FULL : this.table.get(index) !== undefined) {
        this.editPage(index, pageLength, (words) => applyBits(words, from, to, set));
      }
    });
  }

  /** Calls `visit` for each page overlapping chunks [first, end), with the overlap [from, to) in page-relative bits. */
  private forEachPage(first: number, end: number, visit: (index: number, from: number, to: number, pageLength: number) => void): void {
    for (let chunk = first; chunk < end; ) {
      const index = Math.floor(chunk / PAGE_BITS);
      const pageStart = index * PAGE_BITS;
      const pageLength = this.pageLength(index);
      const to = Math.min(end - pageStart, pageLength);
      visit(index, chunk - pageStart, to, pageLength);
      chunk = pageStart + to;
    }
  }

  /** Chunks in pages [from, to), the short last page counted as it is. */
  private chunksInPages(from: number, to: number): number {
    return Math.min(to * PAGE_BITS, this.chunkCount) - from * PAGE_BITS;
  }

  private setChunksInPages(from: number, to: number): number {
    let count = 0;
    this.table.forEachSpan(from, to, (index, end, words) => {
      count += words === null ? this.chunksInPages(index, end) : countPage(words);
    });
    return count;
  }

  /** Makes whole pages [from, to) all set (a run of full pages) or all clear (no pages). */
  private fillPages(from: number, to: number, set: boolean): void {
    this.recordPages(from, to);
    const before = this.setChunksInPages(from, to);
    this.table.fill(from, to, set);
    this.setChunks += (set ? this.chunksInPages(from, to) : 0) - before;
  }

  /** Edits a page's words (an absent or full page is materialized first), then stores it compactly and keeps the count. */
  private editPage(index: number, pageLength: number, edit: (words: Uint32Array) => void): void {
    this.recordPage(index);
    const page = this.table.get(index);
    const before = page === undefined ? 0 : page === FULL ? pageLength : countPage(page);
    const words = page === undefined ? new Uint32Array(PAGE_WORDS) : page === FULL ? fullPage(pageLength) : page;
    edit(words);
    const after = countPage(words);
    this.table.set(index, after === 0 ? undefined : after === pageLength ? FULL : words);
    this.setChunks += after - before;
  }

  /** ORs one mixed source page in, counting only the bits it adds. */
  private orPage(index: number, source: Page): void {
    const page = this.table.get(index);
    if (page === FULL) return;
    if (page === undefined) {
      this.recordPage(index);
      this.table.set(index, source.slice());
      this.setChunks += countPage(source);
      return;
    }
    let added = 0;
    for (let w = 0; w < PAGE_WORDS; w++) {
      const fresh = source[w]! & ~page[w]!;
      if (fresh === 0) continue;
      if (added === 0) this.recordPage(index);
      page[w] = (page[w]! | fresh) >>> 0;
      added += popcount32(fresh);
    }
    if (added === 0) return;
    this.setChunks += added;
    if (isFullPage(page, this.pageLength(index))) this.table.set(index, FULL);
  }
}

/** The first bit in [from, to) of a page that is set (or clear, with `set` false), or `to` if none. */
function nextBit(words: Page, from: number, to: number, set: boolean): number {
  let w = from >>> 5;
  let word = (set ? words[w]! : ~words[w]!) & (-1 << (from & 31));
  for (;;) {
    if (word !== 0) return Math.min(to, (w << 5) + 31 - Math.clz32(word & -word));
    w++;
    if (w << 5 >= to) return to;
    word = set ? words[w]! : ~words[w]!;
  }
}

/** Whether any of bits [from, to) of a page is set. */
function wordsHaveBitsIn(words: Page, from: number, to: number): boolean {
  for (let bit = from; bit < to; ) {
    const w = bit >>> 5;
    const wordEnd = Math.min(to, (w + 1) * 32);
    if ((words[w]! & wordMask(bit & 31, wordEnd - w * 32)) !== 0) return true;
    bit = wordEnd;
  }
  return false;
}

/** true if the first `bitCount` bits of `bytes` are all set, false if all clear, undefined if mixed. */
function uniformBits(bytes: Buffer, bitCount: number): boolean | undefined {
  const whole = bitCount >>> 3;
  const tailBits = bitCount & 7;
  const head = bytes.subarray(0, whole);
  const tail = tailBits === 0 ? 0 : bytes[whole]! & ((1 << tailBits) - 1);
  if (tail === 0 && head.equals(ZEROES.subarray(0, whole))) return false;
  if ((tailBits === 0 || tail === (1 << tailBits) - 1) && head.equals(ONES().subarray(0, whole))) return true;
  return undefined;
}

function readPartialWordLE(data: Buffer, byteAt: number): number {
  let word = 0;
  for (let byte = 0; byteAt + byte < data.length && byte < 4; byte++) word |= data[byteAt + byte]! << (8 * byte);
  return word >>> 0;
}

/**
 * Feeds a hash in large updates: consecutive fills of one byte become one run, long
 * runs are hashed from the shared buffers in pieces of HASH_RUN_BYTES, and copies
 * and short fills are staged into runs of HASH_RUN_BYTES.
 */
class RunHasher {
  private readonly stage = Buffer.allocUnsafe(HASH_RUN_BYTES);
  private staged = 0;
  private fillByte: 0 | 0xff = 0;
  private fillLength = 0;

  constructor(private readonly hash: Hash) {}

  fill(byte: 0 | 0xff, length: number): void {
    if (length === 0) return;
    if (byte !== this.fillByte) this.flushFill();
    this.fillByte = byte;
    this.fillLength += length;
  }

  copy(bytes: Uint8Array): void {
    this.flushFill();
    for (let from = 0; from < bytes.length; ) {
      const piece = Math.min(bytes.length - from, HASH_RUN_BYTES - this.staged);
      this.stage.set(bytes.subarray(from, from + piece), this.staged);
      this.advance(piece);
      from += piece;
    }
  }

  digest(): string {
    this.flushFill();
    this.flushStage();
    return this.hash.digest('hex');
  }

  private flushStage(): void {
    if (this.staged === 0) return;
    this.hash.update(this.stage.subarray(0, this.staged));
    this.staged = 0;
  }

  private flushFill(): void {
    if (this.fillLength >= DIRECT_FILL_BYTES) {
      this.flushStage();
      const source = this.fillByte === 0 ? ZEROES : ONES();
      for (; this.fillLength > 0; this.fillLength -= HASH_RUN_BYTES) this.hash.update(source.subarray(0, Math.min(this.fillLength, HASH_RUN_BYTES)));
      this.fillLength = 0;
      return;
    }
    while (this.fillLength > 0) {
      const piece = Math.min(this.fillLength, HASH_RUN_BYTES - this.staged);
      this.stage.fill(this.fillByte, this.staged, this.staged + piece);
      this.advance(piece);
      this.fillLength -= piece;
    }
  }

  private advance(bytes: number): void {
    this.staged += bytes;
    if (this.staged === HASH_RUN_BYTES) this.flushStage();
  }
}

function isFullPage(page: Page, pageLength: number): boolean {
  if (pageLength < PAGE_BITS) return countPage(page) === pageLength;
  for (let w = 0; w < PAGE_WORDS; w++) if (page[w] !== 0xffffffff) return false;
  return true;
}

function countPage(page: Page): number {
  let count = 0;
  for (let w = 0; w < PAGE_WORDS; w++) if (page[w]) count += popcount32(page[w]!);
  return count;
}

function fullPage(pageLength: number): Page {
  const words = new Uint32Array(PAGE_WORDS);
  applyBits(words, 0, pageLength, true);
  return words;
}

function applyBits(words: Page, from: number, to: number, set: boolean): void {
  for (let bit = from; bit < to; ) {
    const w = bit >>> 5;
    const wordEnd = Math.min(to, (w + 1) * 32);
    const mask = wordMask(bit & 31, wordEnd - w * 32);
    words[w] = set ? (words[w]! | mask) >>> 0 : (words[w]! & ~mask) >>> 0;
    bit = wordEnd;
  }
}
