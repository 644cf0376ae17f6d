import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BitmapData } from '../../../src/block/bitmap/bitmap-data.ts';
import { FULL, PageTable } from '../../../src/block/bitmap/page-table.ts';
import { xorshift } from '../../support/xorshift.ts';

/** Chunks per page of BitmapData (4096 bits). */
const PAGE = 4096;
const GRANULARITY = 512;

/** The reference: one byte per chunk, every operation bit by bit. */
class BitByBit {
  readonly bits: Uint8Array;
  constructor(readonly chunkCount: number) {
    this.bits = new Uint8Array(chunkCount);
  }
  set(first: number, end: number, value: 0 | 1): void {
    for (let chunk = Math.max(0, first); chunk < Math.min(end, this.chunkCount); chunk++) this.bits[chunk] = value;
  }
  merge(other: BitByBit): void {
    for (let chunk = 0; chunk < this.chunkCount; chunk++) this.bits[chunk]! |= other.bits[chunk]!;
  }
  count(): number {
    return this.bits.reduce((sum, bit) => sum + bit, 0);
  }
  sha256(): string {
    const bytes = Buffer.alloc(Math.ceil(this.chunkCount / 64) * 8);
    this.bits.forEach((bit, chunk) => {
      if (bit) bytes[chunk >>> 3]! |= 1 << (chunk & 7);
    });
    return createHash('sha256').update(bytes).digest('hex');
  }
  runs(from = 0, to = this.chunkCount): Array<[number, number]> {
    const runs: Array<[number, number]> = [];
    for (let chunk = from; chunk < to; chunk++) {
      if (!this.bits[chunk]) continue;
      const last = runs[runs.length - 1];
      if (last && last[1] === chunk) last[1] = chunk + 1;
      else runs.push([chunk, chunk + 1]);
    }
    return runs;
  }
  /** Chunks [from, to) as maximal runs of one state each, alternating. */
  allRuns(from: number, to: number): Array<[number, number, boolean]> {
    const runs: Array<[number, number, boolean]> = [];
    for (let chunk = from; chunk < Math.min(to, this.chunkCount); chunk++) {
      const dirty = this.bits[chunk] === 1;
      const last = runs[runs.length - 1];
      if (last && last[2] === dirty) last[1] = chunk + 1;
      else runs.push([chunk, chunk + 1, dirty]);
    }
    return runs;
  }
}

/** A bitmap and its reference, changed together. */
class Pair {
  readonly data: BitmapData;
  readonly model: BitByBit;
  constructor(readonly chunkCount: number) {
    this.data = new BitmapData({ diskSize: chunkCount * GRANULARITY - 100, granularity: GRANULARITY });
    this.model = new BitByBit(chunkCount);
  }
  mark(first: number, end: number): void {
    this.data.markRange(first * GRANULARITY, (end - first) * GRANULARITY);
    this.model.set(first, end, 1);
  }
  reset(first: number, end: number): void {
    this.data.resetRange(first * GRANULARITY, (end - first) * GRANULARITY);
    this.model.set(first, end, 0);
  }
  merge(other: Pair): void {
    this.data.mergeFrom(other.data);
    this.model.merge(other.model);
  }
  clear(): void {
    this.data.clearAll();
    this.model.set(0, this.chunkCount, 0);
  }
}

function expectEqual(pair: Pair): void {
  const { data, model } = pair;
  expect(data.chunkCount).toBe(model.chunkCount);
  expect(data.setChunkCount()).toBe(model.count());
  expect(data.sha256()).toBe(model.sha256());
  expect([...data.dirtyRuns()]).toEqual(model.runs());
  const getChunks = Uint8Array.from({ length: model.chunkCount }, (_, chunk) => (data.getChunk(chunk) ? 1 : 0));
  expect(Buffer.from(getChunks).equals(Buffer.from(model.bits))).toBe(true);
}

/** 37 whole pages and a short last page of 1234 chunks (the disk ends 100 bytes into its last chunk). */
const CHUNKS = 37 * PAGE + 1234;
const DENSITIES = [0, 0.25, 0.5, 1];

/**
 * Like the bench's density curve: stripes of 8 pages, the first `density` of each
 * stripe dirty, plus one chunk just past the dirty prefix, so pages are full,
 * clean, mixed, and full runs end at the short last page.
 */
function densityPair(density: number): Pair {
  const pair = new Pair(CHUNKS);
  const stripe = 8 * PAGE;
  for (let start = 0; start < CHUNKS; start += stripe) {
    const prefix = Math.round(stripe * density);
    pair.mark(start, start + prefix);
    if (density > 0 && density < 1) pair.mark(start + prefix + 1, start + prefix + 2);
  }
  return pair;
}

/** A chunk on or next to a page boundary, or anywhere. */
function edgeChunk(random: () => number): number {
  const page = Math.floor(random() * (CHUNKS / PAGE + 1));
  const near = page * PAGE + Math.floor(random() * 5) - 2;
  return Math.max(0, Math.min(CHUNKS, random() < 0.8 ? near : Math.floor(random() * CHUNKS)));
}

describe('BitmapData against a bit-by-bit reference, at 0/25/50/100% density', () => {
  for (const density of DENSITIES) {
    it(`${density * 100}%: the bits, count, sha256 and runs`, () => {
      expectEqual(densityPair(density));
    });

    it(`${density * 100}%: merge into an empty bitmap, into a partly dirty one and into itself`, () => {
      const source = densityPair(density);
      const empty = new Pair(CHUNKS);
      empty.merge(source);
      expectEqual(empty);
      const partly = new Pair(CHUNKS);
      partly.mark(PAGE - 3, 3 * PAGE + 5);
      partly.mark(20 * PAGE, 21 * PAGE);
      partly.mark(CHUNKS - 7, CHUNKS);
      partly.merge(source);
      expectEqual(partly);
      source.merge(source);
      expectEqual(source);
      // The merged copy owns its pages: changing the source leaves it alone.
      source.reset(0, CHUNKS);
      expectEqual(empty);
    });

    it(`${density * 100}%: clear, and partial resets cutting full runs at page edges`, () => {
      const pair = densityPair(density);
      pair.reset(PAGE + 1, 2 * PAGE - 1);
      pair.reset(8 * PAGE, 9 * PAGE);
      pair.reset(CHUNKS - PAGE - 1, CHUNKS);
      expectEqual(pair);
      pair.clear();
      expectEqual(pair);
    });

    it(`${density * 100}%: a transaction's rollback restores the bits exactly`, () => {
      const pair = densityPair(density);
      const before = pair.data.sha256();
      const count = pair.data.setChunkCount();
      const undo = pair.data.recordUndo();
      pair.data.mergeFrom(densityPair(1 - density).data);
      pair.data.resetRange(3 * PAGE * GRANULARITY, 2 * PAGE * GRANULARITY);
      pair.data.rollBack(undo);
      expect(pair.data.sha256()).toBe(before);
      expect(pair.data.setChunkCount()).toBe(count);
      expectEqual(pair);
    });
  }

  it('random marks, resets and merges around page boundaries', () => {
    const random = xorshift(31);
    const pairs = [new Pair(CHUNKS), new Pair(CHUNKS), densityPair(0.5)];
    for (let step = 0; step < 400; step++) {
      const pair = pairs[Math.floor(random() * pairs.length)]!;
      const a = edgeChunk(random);
      const b = random() < 0.3 ? edgeChunk(random) : a + Math.floor(random() * 3 * PAGE);
      const [first, end] = a <= b ? [a, b] : [b, a];
      const action = random();
      if (action < 0.5) pair.mark(first, end);
      else if (action < 0.85) pair.reset(first, end);
      else if (action < 0.97) pair.merge(pairs[Math.floor(random() * pairs.length)]!);
      else pair.clear();
    }
    for (const pair of pairs) expectEqual(pair);
  });

  it('forEachRun: clean and dirty runs over windows at page edges and anywhere, and stopping early', () => {
    const random = xorshift(7);
    const scattered = new Pair(CHUNKS);
    for (let i = 0; i < 300; i++) {
      const first = Math.floor(random() * CHUNKS);
      scattered.mark(first, first + 1 + Math.floor(random() * (random() < 0.1 ? 2 * PAGE : 70)));
    }
    for (const pair of [...DENSITIES.map(densityPair), scattered]) {
      const runsIn = (from: number, to: number, stopAfter = Infinity) => {
        const seen: Array<[number, number, boolean]> = [];
        pair.data.forEachRun(from, to, (first, end, dirty) => seen.push([first, end, dirty]) >= stopAfter);
        return seen;
      };
      expect(runsIn(0, CHUNKS)).toEqual(pair.model.allRuns(0, CHUNKS));
      for (let window = 0; window < 300; window++) {
        const a = edgeChunk(random);
        const b = random() < 0.5 ? edgeChunk(random) : a + Math.floor(random() * 2 * PAGE);
        const [from, to] = a <= b ? [a, b] : [b, a];
        const expected = pair.model.allRuns(from, to);
        expect(runsIn(from, to)).toEqual(expected);
        const stopAfter = 1 + Math.floor(random() * 3);
        expect(runsIn(from, to, stopAfter)).toEqual(expected.slice(0, stopAfter));
      }
      expect(runsIn(5, 5)).toEqual([]);
      expect(runsIn(CHUNKS - 3, CHUNKS + 50)).toEqual(pair.model.allRuns(CHUNKS - 3, CHUNKS));
    }
  });

  it('serialized windows read back what the reference holds, at every density', () => {
    for (const density of DENSITIES) {
      const pair = densityPair(density);
      const bytes = pair.data.serializedByteLength();
      const out = Buffer.alloc(4096);
      for (let offset = 0; offset < bytes; offset += 4096) {
        const length = Math.min(4096, bytes - offset);
        const kind = pair.data.readSerialized(offset, length, out);
        const ones = pair.model.bits.subarray(offset * 8, Math.min(CHUNKS, (offset + length) * 8));
        const set = ones.reduce((sum, bit) => sum + bit, 0);
        expect(kind).toBe(set === 0 ? 'zero' : set === ones.length ? 'ones' : 'mixed');
        expect(pair.data.anyDirtyInSerialized(offset, length)).toBe(set > 0);
        const expected = Buffer.alloc(length);
        ones.forEach((bit, chunk) => {
          if (bit) expected[chunk >>> 3]! |= 1 << (chunk & 7);
        });
        expect(out.subarray(0, length).equals(expected)).toBe(true);
      }
    }
  });

  it('visits stored spans covering exactly the dirty chunks, full runs whole', () => {
    for (const density of DENSITIES) {
      const pair = densityPair(density);
      let counted = 0;
      let fullRuns = 0;
      pair.data.forEachDirtySpan(0, CHUNKS, (first, length, words) => {
        if (words !== null) {
          for (let bit = 0; bit < length; bit++) counted += (words[bit >>> 5]! >>> (bit & 31)) & 1;
          return;
        }
        fullRuns++;
        counted += length;
        expect(pair.model.bits.subarray(first, first + length).every((bit) => bit === 1)).toBe(true);
      });
      expect(counted).toBe(pair.model.count());
      // One run per stripe's dirty prefix, not one entry per page.
      if (density > 0) expect(fullRuns).toBeLessThanOrEqual(Math.ceil(CHUNKS / (8 * PAGE)));
    }
  });
});

describe('PageTable', () => {
  /** Reference: a state per page ('clean', 'full' or the words themselves). */
  function states(table: PageTable, pages: number): Array<string> {
    return Array.from({ length: pages }, (_, index) => {
      const page = table.get(index);
      return page === undefined ? 'clean' : page === FULL ? 'full' : `mixed:${page[0]}`;
    });
  }

  it('keeps runs of full pages merged and split correctly under random fills and sets', () => {
    const random = xorshift(9);
    const pages = 64;
    const table = new PageTable();
    const model: string[] = new Array(pages).fill('clean');
    for (let step = 0; step < 2000; step++) {
      const a = Math.floor(random() * pages);
      const b = Math.min(pages, a + 1 + Math.floor(random() * 9));
      const action = random();
      if (action < 0.35) {
        table.fill(a, b, true);
        model.fill('full', a, b);
      } else if (action < 0.6) {
        table.fill(a, b, false);
        model.fill('clean', a, b);
      } else {
        const kind = Math.floor(random() * 3);
        const page = kind === 0 ? undefined : kind === 1 ? FULL : Uint32Array.of(step + 1);
        table.set(a, page);
        model[a] = kind === 0 ? 'clean' : kind === 1 ? 'full' : `mixed:${step + 1}`;
      }
      expect(states(table, pages)).toEqual(model);
    }
    const spans: Array<[number, number, boolean]> = [];
    table.forEachSpan(0, pages, (index, end, words) => {
      spans.push([index, end, words === null]);
    });
    // Ascending, disjoint, and no two full runs touch.
    for (let i = 1; i < spans.length; i++) {
      expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
      if (spans[i]![2] && spans[i - 1]![2]) expect(spans[i]![0]).toBeGreaterThan(spans[i - 1]![1]);
    }
    const clone = table.clone();
    table.fill(0, pages, false);
    expect(states(clone, pages)).toEqual(model);
  });

  it('clips full runs to the visited range and stops when the visitor says so', () => {
    const table = new PageTable();
    table.fill(2, 10, true);
    table.set(12, Uint32Array.of(1));
    table.fill(14, 20, true);
    const spans: Array<[number, number, boolean]> = [];
    table.forEachSpan(5, 16, (index, end, words) => {
      spans.push([index, end, words === null]);
    });
    expect(spans).toEqual([
      [5, 10, true],
      [12, 13, false],
      [14, 16, true],
    ]);
    let visits = 0;
    table.forEachSpan(0, 20, () => ++visits === 2);
    expect(visits).toBe(2);
  });
});
