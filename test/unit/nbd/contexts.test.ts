import { describe, expect, it } from 'vitest';
import { BitmapData } from '../../../src/block/bitmap/bitmap-data.ts';
import { DirtyBitmap } from '../../../src/block/bitmap/dirty-bitmap.ts';
import { NullDriver } from '../../../src/block/drivers/null-co.ts';
import { BlockNode } from '../../../src/block/node.ts';
import { exportContexts } from '../../../src/nbd/contexts.ts';

const TIB = 2 ** 40;

function exported(size: number, granularity: number, allocationDepth = false) {
  const node = new BlockNode('n0', new NullDriver('null-co', { size }, 'null-co://'), [], false, true);
  const bitmap = new DirtyBitmap('b0', new BitmapData({ diskSize: size, granularity }), { enabled: true, persistent: false });
  node.addBitmap(bitmap);
  return { node, bitmap, contexts: exportContexts({ node, allocationDepth, bitmaps: [bitmap] }) };
}

describe('meta contexts of an export', () => {
  it('has QEMU ids: base:allocation 0, allocation depth 1 when asked for, bitmaps from 2', () => {
    expect(exported(1 << 20, 65536, true).contexts.map((c) => [c.id, c.name])).toEqual([
      [0, 'base:allocation'],
      [1, 'qemu:allocation-depth'],
      [2, 'qemu:dirty-bitmap:b0'],
    ]);
    expect(exported(1 << 20, 65536).contexts.map((c) => c.id)).toEqual([0, 2]);
  });

  it('reports dirty chunks whole, clipped to the request', () => {
    const { bitmap, contexts } = exported(1 << 20, 65536);
    bitmap.data.markRange(70000, 1);
    bitmap.data.markRange(200000, 70000);
    expect(contexts[1]!.extents(0, 1 << 20, 100)).toEqual([
      { length: 65536, flags: 0 },
      { length: 65536, flags: 1 },
      { length: 65536, flags: 0 },
      { length: 131072, flags: 1 },
      { length: (1 << 20) - 327680, flags: 0 },
    ]);
    expect(contexts[1]!.extents(100000, 1000, 100)).toEqual([{ length: 1000, flags: 1 }]);
    expect(contexts[1]!.extents(0, 1 << 20, 1)).toEqual([{ length: 65536, flags: 0 }]);
  });

  it('covers a whole request with one dirty extent, up to 32 bits of length', () => {
    const { bitmap, contexts } = exported(16 * TIB, 65536);
    bitmap.data.markRange(0, 16 * TIB);
    expect(contexts[1]!.extents(TIB, 0xffffffff, 10)).toEqual([{ length: 0xffffffff, flags: 1 }]);
  });

  it('finds 10,000 extents in a 16 TiB bitmap', () => {
    const { bitmap, contexts } = exported(16 * TIB, 65536);
    for (let i = 0; i < 10_000; i++) bitmap.data.markRange(i * 1024 * 1024 * 1024, 65536);
    let dirty = 0;
    for (let offset = 0; offset < 16 * TIB; ) {
      const extents = contexts[1]!.extents(offset, Math.min(0xffffffff - 65535, 16 * TIB - offset), 131072);
      for (const extent of extents) {
        if (extent.flags) dirty++;
        offset += extent.length;
      }
    }
    expect(dirty).toBe(10_000);
  });
});
