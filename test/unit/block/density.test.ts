import { describe, expect, it } from 'vitest';
import { BitmapData } from '../../../src/block/bitmap/bitmap-data.ts';
import { dirtyDensity } from '../../../src/block/bitmap/density.ts';

/** The same summary the slow way: every chunk of every pixel looked up on its own. */
function naiveDensity(data: BitmapData, offset: number, length: number, width: number): number[] {
  const first = Math.floor(offset / data.granularity);
  const end = Math.min(Math.ceil((offset + length) / data.granularity), data.chunkCount);
  const chunks = end - first;
  const pixels = Math.min(width, chunks);
  const result: number[] = [];
  for (let pixel = 0; pixel < pixels; pixel++) {
    const from = first + Math.floor((pixel * chunks) / pixels);
    const to = first + Math.floor(((pixel + 1) * chunks) / pixels);
    let set = 0;
    for (let chunk = from; chunk < to; chunk++) if (data.getChunk(chunk)) set++;
    result.push(set === 0 ? 0 : Math.max(1, Math.round((set * 255) / (to - from))));
  }
  return result;
}

/** A reproducible pseudo-random sequence (xorshift), so a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

describe('dirtyDensity: a bitmap drawn at a resolution from its pages', () => {
  it('agrees with a chunk-by-chunk count for scattered writes, whole pages and zoomed ranges', () => {
    const next = random(17);
    const granularity = 65536;
    const data = new BitmapData({ diskSize: 100_000 * granularity + 12345, granularity });
    for (let i = 0; i < 300; i++) data.markRange(Math.floor(next() * data.diskSize), Math.floor(next() * 40 * granularity) + 1);
    data.markRange(20_000 * granularity, 9000 * granularity); // spans whole pages
    data.markRange(data.diskSize - 100, 100); // the partial last chunk
    const ranges: Array<[number, number, number]> = [
      [0, data.diskSize, 1000],
      [0, data.diskSize, 7],
      [0, data.diskSize, 65535],
      [19_999 * granularity + 5, 3 * 4096 * granularity, 333],
      [12_345 * granularity, 50 * granularity, 200], // fewer chunks than pixels
      [data.diskSize - 10 * granularity, 100 * granularity, 64], // runs past the end
    ];
    for (const [offset, length, width] of ranges) {
      expect(Array.from(dirtyDensity(data, offset, length, width).density), `${offset}+${length}@${width}`).toEqual(
        naiveDensity(data, offset, length, width),
      );
    }
  });

  it('reports the byte range it drew: whole chunks, cut at the disk end', () => {
    const data = new BitmapData({ diskSize: 10 * 65536 + 100, granularity: 65536 });
    expect(dirtyDensity(data, 70000, 10, 4)).toMatchObject({ offset: 65536, length: 65536 });
    expect(dirtyDensity(data, 9 * 65536, 10 * 65536, 4)).toMatchObject({ offset: 9 * 65536, length: 65536 + 100 });
    expect(dirtyDensity(data, 20 * 65536, 65536, 4).density.length).toBe(0);
  });

  it('draws a 16 TiB bitmap: one dirty chunk still shows, a full half is solid', () => {
    const data = new BitmapData({ diskSize: 2 ** 44, granularity: 65536 });
    data.markRange(2 ** 43, 2 ** 43);
    data.markRange(5 * 2 ** 30, 1);
    const { density } = dirtyDensity(data, 0, 2 ** 44, 1024);
    expect(density[0]).toBe(1); // 5 GiB lies in the first 16 GiB pixel
    expect(density.filter((value) => value > 0).length).toBe(513);
    expect(density.slice(512).every((value) => value === 255)).toBe(true);
  });
});
