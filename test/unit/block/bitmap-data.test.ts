import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BitmapData } from '../../../src/block/bitmap/bitmap-data.ts';
import { xorshift } from '../../support/xorshift.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const TiB = 2 ** 40;

/** A plain boolean-per-chunk model the sparse store is checked against. */
class ModelBitmap {
  readonly bits: boolean[];
  constructor(
    readonly diskSize: number,
    readonly granularity: number,
  ) {
    this.bits = new Array(Math.ceil(diskSize / granularity)).fill(false);
  }
  mark(offset: number, length: number): void {
    const end = Math.min(offset + length, this.diskSize);
    for (let chunk = Math.floor(offset / this.granularity); chunk * this.granularity < end; chunk++) this.bits[chunk] = true;
  }
  reset(offset: number, length: number): void {
    const end = Math.min(offset + length, this.diskSize);
    for (let chunk = 0; chunk < this.bits.length; chunk++) {
      const chunkStart = chunk * this.granularity;
      const chunkEnd = Math.min(chunkStart + this.granularity, this.diskSize);
      if (chunkStart >= offset && chunkEnd <= end) this.bits[chunk] = false;
    }
  }
  count(): number {
    return this.bits.filter(Boolean).length;
  }
}

function expectSame(data: BitmapData, model: ModelBitmap): void {
  expect(data.setChunkCount()).toBe(model.count());
  expect(data.dirtyBytes()).toBe(model.count() * model.granularity);
  const actual = model.bits.map((_, chunk) => data.getChunk(chunk));
  expect(actual).toEqual(model.bits);
}

describe('BitmapData marking and clearing', () => {
  it('marks every chunk a write touches and counts them', () => {
    const data = new BitmapData({ diskSize: MiB, granularity: 64 * KiB });
    data.markRange(64 * KiB - 1, 2);
    expect(data.setChunkCount()).toBe(2);
    expect(data.getChunk(0)).toBe(true);
    expect(data.getChunk(1)).toBe(true);
    expect(data.getChunk(2)).toBe(false);
    expect(data.dirtyBytes()).toBe(128 * KiB);
  });

  it('treats the last partial chunk as one chunk, for marks and for clears reaching the end', () => {
    const data = new BitmapData({ diskSize: 1000448, granularity: 512 });
    expect(data.chunkCount).toBe(1954);
    data.markRange(999936, 64);
    expect(data.setChunkCount()).toBe(1);
    data.markRange(1000000, 10 * MiB);
    expect(data.setChunkCount()).toBe(1);
    data.markRange(4096, 1);
    expect(data.setChunkCount()).toBe(2);
    data.resetRange(999936 + 1, 10 * MiB);
    expect(data.setChunkCount()).toBe(2);
    data.resetRange(999936, 10 * MiB);
    expect(data.setChunkCount()).toBe(1);
  });

  it('clears only chunks wholly inside the range', () => {
    const data = new BitmapData({ diskSize: MiB, granularity: 64 * KiB });
    data.markRange(0, MiB);
    data.resetRange(1, 128 * KiB);
    expect(data.getChunk(0)).toBe(true);
    expect(data.getChunk(1)).toBe(false);
    expect(data.getChunk(2)).toBe(true);
    expect(data.setChunkCount()).toBe(15);
  });

  it('agrees with a plain model over random marks and clears spanning page edges', () => {
    const random = xorshift(7);
    const diskSize = 3 * 4096 * 512 + 777;
    const data = new BitmapData({ diskSize, granularity: 512 });
    const model = new ModelBitmap(diskSize, 512);
    for (let step = 0; step < 300; step++) {
      const offset = Math.floor(random() * diskSize);
      const length = Math.floor(random() * (random() < 0.1 ? diskSize : 40000)) + 1;
      if (random() < 0.6) {
        data.markRange(offset, length);
        model.mark(offset, length);
      } else {
        data.resetRange(offset, length);
        model.reset(offset, length);
      }
    }
    expectSame(data, model);
  });

  it('clears part of a fully dirty page and keeps the count exact', () => {
    const data = new BitmapData({ diskSize: 4096 * 4 * 512, granularity: 512 });
    data.markRange(0, 4096 * 4 * 512);
    expect(data.setChunkCount()).toBe(16384);
    data.resetRange(4096 * 512 + 512, 512 * 3);
    expect(data.setChunkCount()).toBe(16381);
    expect(data.getChunk(4097)).toBe(false);
    expect(data.getChunk(4096)).toBe(true);
  });
});

describe('BitmapData version', () => {
  it('grows with every change of the bits, also one that leaves the count as it was', () => {
    const data = new BitmapData({ diskSize: 1 << 30, granularity: 65536 });
    const seen = [data.version];
    data.markRange(0, 65536);
    seen.push(data.version);
    data.clearAll();
    data.markRange(1 << 20, 65536);
    seen.push(data.version);
    data.mergeFrom(new BitmapData({ diskSize: 1 << 30, granularity: 65536 }));
    seen.push(data.version);
    expect(data.dirtyBytes()).toBe(65536);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
  });
});

describe('BitmapData merge, snapshot and restore', () => {
  it('merges sources of another granularity chunk by chunk covered', () => {
    const fine = new BitmapData({ diskSize: 16 * MiB, granularity: 4 * KiB });
    fine.markRange(1 * MiB + 4 * KiB, 4 * KiB);
    fine.markRange(3 * MiB - 4 * KiB, 8 * KiB);
    const coarse = new BitmapData({ diskSize: 16 * MiB, granularity: MiB });
    coarse.mergeFrom(fine);
    expect(coarse.setChunkCount()).toBe(3);
    expect([1, 2, 3].map((chunk) => coarse.getChunk(chunk))).toEqual([true, true, true]);

    const back = new BitmapData({ diskSize: 16 * MiB, granularity: 4 * KiB });
    back.mergeFrom(coarse);
    expect(back.dirtyBytes()).toBe(3 * MiB);
  });

  it('merges pages of the same granularity with a union, not a copy', () => {
    const target = new BitmapData({ diskSize: 64 * MiB, granularity: 512 });
    const source = new BitmapData({ diskSize: 64 * MiB, granularity: 512 });
    target.markRange(0, 512);
    source.markRange(1024, 512);
    source.markRange(8 * MiB, 4 * MiB);
    target.mergeFrom(source);
    expect(target.setChunkCount()).toBe(2 + 8192);
    expect(source.setChunkCount()).toBe(1 + 8192);
    source.resetRange(0, 64 * MiB);
    expect(target.setChunkCount()).toBe(2 + 8192);
  });

  it('rolls back exactly what changed since an undo record started, newest record first', () => {
    const random = xorshift(5);
    const diskSize = 3 * 4096 * 4096 + 777 * 4096;
    const data = new BitmapData({ diskSize, granularity: 4096 });
    const other = new BitmapData({ diskSize, granularity: 4096 });
    for (let step = 0; step < 40; step++) {
      data.markRange(Math.floor(random() * diskSize), Math.floor(random() * 40 * MiB));
      other.markRange(Math.floor(random() * diskSize), Math.floor(random() * 40 * MiB));
    }
    const original = data.sha256();
    const first = data.recordUndo();
    data.mergeFrom(other);
    const merged = data.sha256();
    const second = data.recordUndo();
    data.clearAll();
    data.markRange(5 * MiB, 300 * MiB);
    data.resetRange(7 * MiB, 1 * MiB);
    data.rollBack(second);
    expect(data.sha256()).toBe(merged);
    data.rollBack(first);
    expect(data.sha256()).toBe(original);
    const model = new BitmapData({ diskSize, granularity: 4096 });
    model.mergeFrom(data);
    expect(data.setChunkCount()).toBe(model.setChunkCount());
  });

  it('rolls back a restoreFrom() made while an undo record was pending', () => {
    const data = new BitmapData({ diskSize: TiB, granularity: 64 * KiB });
    data.markRange(5 * MiB, 300 * MiB);
    const before = data.sha256();
    const other = new BitmapData({ diskSize: TiB, granularity: 64 * KiB });
    other.markRange(TiB / 2, 3 * MiB);
    const undo = data.recordUndo();
    data.restoreFrom(other);
    expect(data.sha256()).toBe(other.sha256());
    data.rollBack(undo);
    expect(data.sha256()).toBe(before);
    expect(data.dirtyBytes()).toBe(300 * MiB);
  });

  it('keeps a committed change: a later rollback returns to it, not to the state before', () => {
    const data = new BitmapData({ diskSize: TiB, granularity: 64 * KiB });
    data.markRange(5 * MiB, 300 * MiB);
    const committed = data.recordUndo();
    data.markRange(TiB - 1, 1);
    data.forgetUndo(committed);
    const kept = data.sha256();
    const later = data.recordUndo();
    data.clearAll();
    data.rollBack(later);
    expect(data.sha256()).toBe(kept);
    expect(data.getChunk(data.chunkCount - 1)).toBe(true);
  });
});

/** The bits as QEMU hashes them: 64-bit little-endian words, the last one padded with zeroes. */
function modelSha256(model: ModelBitmap): string {
  const bytes = Buffer.alloc(Math.ceil(model.bits.length / 64) * 8);
  model.bits.forEach((set, chunk) => {
    if (set) bytes[chunk >>> 3]! |= 1 << (chunk & 7);
  });
  return createHash('sha256').update(bytes).digest('hex');
}

describe('BitmapData sha256 (values QEMU 7.2 returned for the same writes)', () => {
  it('equals the hash of the dense layout at every density, with full, clean and mixed pages and a partial last page', () => {
    const random = xorshift(23);
    const diskSize = 40 * 4096 * 4096 + 1234 * 4096 + 100;
    for (const density of [0, 0.01, 0.3, 0.7, 0.99, 1]) {
      const data = new BitmapData({ diskSize, granularity: 4096 });
      const model = new ModelBitmap(diskSize, 4096);
      const stripe = 4096 * 4096 * 3 + 4096 * 7;
      for (let offset = 0; offset < diskSize; offset += stripe) {
        const length = Math.round(stripe * density * (0.5 + random()));
        data.markRange(offset, length);
        model.mark(offset, length);
      }
      expect(data.sha256()).toBe(modelSha256(model));
    }
  });

  it('1 GiB at 64 KiB: empty, one chunk, 300 MiB run', () => {
    const data = new BitmapData({ diskSize: 1 << 30, granularity: 64 * KiB });
    expect(data.sha256()).toBe('e5a00aa9991ac8a5ee3109844d84a55583bd20572ad3ffcd42792f3c36b183ad');
    data.markRange(0, 64 * KiB);
    expect(data.sha256()).toBe('d5990a0fe875a0aa109edb831f0e95b8f0a3a46b9b78daeaea9ce05c32c7201f');
    data.markRange(100 * MiB, 300 * MiB);
    expect(data.sha256()).toBe('c5a16091721c23ce537aedbe0a5b7fc1df2a0ce7043c41e8a36efbabf970264d');
    expect(data.dirtyBytes()).toBe(314638336);
  });

  it('a size that is not a multiple of 64 chunks: the last word is padded with zeroes', () => {
    const data = new BitmapData({ diskSize: 1000448, granularity: 512 });
    data.markRange(999936, 64);
    data.markRange(4096, 513);
    expect(data.dirtyBytes()).toBe(1536);
    expect(data.sha256()).toBe('a24f843b37a6335db1e2ab3a85704a12ab747891f82471ee14ca320f87f703ec');
  });

  it('16 TiB at 64 KiB, and merged into 1 MiB granularity', () => {
    const data = new BitmapData({ diskSize: 16 * TiB, granularity: 64 * KiB });
    data.markRange(0, 64 * KiB);
    data.markRange(8 * TiB, 16 * MiB);
    data.markRange(16 * TiB - 1, 1);
    expect(data.dirtyBytes()).toBe(16908288);
    expect(data.sha256()).toBe('b018f25f9fe14f84828a4d4ff049702f44cd25f598211c2cfe4c6b75d689a704');
    const coarse = new BitmapData({ diskSize: 16 * TiB, granularity: MiB });
    coarse.mergeFrom(data);
    expect(coarse.dirtyBytes()).toBe(18874368);
    expect(coarse.sha256()).toBe('4707023e83a2f1aeace8ebc36459cdbe34d56392e695d8f4a774751e1412e160');
  });
});

describe('BitmapData serialization (the layout qcow2 bitmap clusters hold)', () => {
  it('serializes bit i of byte j as chunk 8j+i and classifies windows', () => {
    const data = new BitmapData({ diskSize: 1 << 30, granularity: 64 * KiB });
    data.markRange(0, 64 * KiB);
    data.markRange(9 * 64 * KiB, 64 * KiB);
    const out = Buffer.alloc(4);
    expect(data.readSerialized(0, 4, out)).toBe('mixed');
    expect([...out]).toEqual([0x01, 0x02, 0, 0]);
    expect(data.readSerialized(4, 4, out)).toBe('zero');
    data.markRange(32 * 64 * KiB, 32 * 64 * KiB);
    expect(data.readSerialized(4, 4, out)).toBe('ones');
    expect([...out]).toEqual([0xff, 0xff, 0xff, 0xff]);
  });

  it('round-trips random bitmaps through cluster-sized windows', () => {
    const random = xorshift(11);
    const diskSize = 5 * 4096 * 4096 + 4096 * 3 + 100;
    const source = new BitmapData({ diskSize, granularity: 4096 });
    const model = new ModelBitmap(diskSize, 4096);
    for (let step = 0; step < 200; step++) {
      const offset = Math.floor(random() * diskSize);
      const length = Math.floor(random() * (random() < 0.03 ? 30 * MiB : 3 * MiB)) + 1;
      source.markRange(offset, length);
      model.mark(offset, length);
    }
    const window = 1000;
    const copy = new BitmapData({ diskSize, granularity: 4096 });
    copy.markRange(0, diskSize);
    const buffer = Buffer.alloc(window);
    for (let offset = 0; offset < source.serializedByteLength(); offset += window) {
      const length = Math.min(window, source.serializedByteLength() - offset);
      const kind = source.readSerialized(offset, length, buffer);
      if (kind === 'ones') copy.fillSerialized(offset, length);
      else copy.writeSerialized(offset, buffer.subarray(0, length));
    }
    expectSame(copy, model);
    expect(copy.sha256()).toBe(source.sha256());
  });

  it('tells whether a serialized window holds any dirty chunk, exactly at its edges', () => {
    const data = new BitmapData({ diskSize: 16 * TiB, granularity: 64 * KiB });
    data.markRange(64 * KiB * 8 * 1000, 64 * KiB);
    expect(data.anyDirtyInSerialized(1000, 1)).toBe(true);
    expect(data.anyDirtyInSerialized(999, 1)).toBe(false);
    expect(data.anyDirtyInSerialized(1001, 1 << 20)).toBe(false);
    expect(data.anyDirtyInSerialized(0, data.serializedByteLength())).toBe(true);
    data.markRange(0, 16 * TiB);
    expect(data.anyDirtyInSerialized(5, 3)).toBe(true);
    expect(data.anyDirtyInSerialized(data.serializedByteLength(), 8)).toBe(false);
  });

  it('ignores serialized bits past the last chunk', () => {
    const data = new BitmapData({ diskSize: 10 * 512, granularity: 512 });
    data.writeSerialized(0, Buffer.from([0xff, 0xff, 0xff, 0xff]));
    expect(data.setChunkCount()).toBe(10);
  });

  it('refuses offsets that are not 32-bit aligned', () => {
    const data = new BitmapData({ diskSize: MiB, granularity: 512 });
    expect(() => data.writeSerialized(2, Buffer.alloc(4))).toThrow(RangeError);
  });
});

describe('BitmapData on a 16 TiB disk', () => {
  it('stays cheap while mostly clean: 200 scattered 16 MiB extents', () => {
    const data = new BitmapData({ diskSize: 16 * TiB, granularity: 64 * KiB });
    for (let i = 0; i < 200; i++) data.markRange(Math.floor((i * (16 * TiB)) / 200 / (64 * KiB)) * 64 * KiB, 16 * MiB);
    expect(data.dirtyBytes()).toBe(200 * 16 * MiB);
    const runs = [...data.dirtyRuns()];
    expect(runs).toHaveLength(200);
    expect(runs.every(([first, end]) => end - first === 256)).toBe(true);
  });
});
