import { describe, expect, it } from 'vitest';
import { BitmapData } from '../../../src/block/bitmap/bitmap-data.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
/** Chunks per page of the sparse store: resizes across and inside a page boundary both matter. */
const PAGE_CHUNKS = 4096;

function chunks(data: BitmapData): boolean[] {
  return Array.from({ length: data.chunkCount }, (_, chunk) => data.getChunk(chunk));
}

/** The same bits built directly at the final size: what a resize must be equal to. */
function built(diskSize: number, granularity: number, dirty: Array<[number, number]>): BitmapData {
  const data = new BitmapData({ diskSize, granularity });
  for (const [offset, length] of dirty) data.markRange(offset, length);
  return data;
}

describe('BitmapData.resize', () => {
  it('growing keeps every bit and adds clean chunks (QEMU: 32 MiB -> 64 MiB keeps the count)', () => {
    const data = built(32 * MiB, 64 * KiB, [[0, MiB], [31 * MiB, MiB]]);
    data.resize(64 * MiB);
    expect(data.chunkCount).toBe(1024);
    expect(data.dirtyBytes()).toBe(2 * MiB);
    expect(data.sha256()).toBe(built(64 * MiB, 64 * KiB, [[0, MiB], [31 * MiB, MiB]]).sha256());
    // The oracle's sha256 for this state (QEMU 7.2, iotest 086).
    expect(data.sha256()).toBe('57cc510e023baf1e2b0a999438b18b154d75ebd04f650ee1b7833f5e63308600');
    data.markRange(63 * MiB, MiB);
    expect(data.dirtyBytes()).toBe(3 * MiB);
  });

  it('shrinking drops the bits past the new end (QEMU: 32 MiB -> 16 MiB halves the count)', () => {
    const data = built(32 * MiB, 64 * KiB, [[0, MiB], [31 * MiB, MiB]]);
    data.resize(16 * MiB);
    expect(data.dirtyBytes()).toBe(MiB);
    expect(data.sha256()).toBe('29e5e39c8605b7433b59c0b8268fcc2c6e85709319ead6b8eba0791d6057e043');
    data.resize(32 * MiB);
    expect(data.dirtyBytes()).toBe(MiB);
    expect(chunks(data)).toEqual(chunks(built(32 * MiB, 64 * KiB, [[0, MiB]])));
  });

  it('a full partial last page does not spread over the chunks a grow adds', () => {
    const granularity = 512;
    const size = (PAGE_CHUNKS + 100) * granularity;
    const data = built(size, granularity, [[0, size]]);
    data.resize(size + 50 * granularity);
    expect(data.setChunkCount()).toBe(PAGE_CHUNKS + 100);
    expect(data.getChunk(PAGE_CHUNKS + 100)).toBe(false);
    data.markRange(size, 50 * granularity);
    expect(data.setChunkCount()).toBe(PAGE_CHUNKS + 150);
    expect(data.sha256()).toBe(built(size + 50 * granularity, granularity, [[0, size + 50 * granularity]]).sha256());
  });

  it('shrinking into a page leaves it full when every remaining chunk is set, and to zero leaves nothing', () => {
    const granularity = 512;
    const size = 3 * PAGE_CHUNKS * granularity;
    const data = built(size, granularity, [[0, PAGE_CHUNKS * granularity + 10 * granularity]]);
    data.resize((PAGE_CHUNKS + 10) * granularity);
    expect(data.setChunkCount()).toBe(PAGE_CHUNKS + 10);
    expect(data.sha256()).toBe(built((PAGE_CHUNKS + 10) * granularity, granularity, [[0, size]]).sha256());
    data.resize(0);
    expect(data.chunkCount).toBe(0);
    expect(data.setChunkCount()).toBe(0);
    data.resize(granularity);
    expect(data.getChunk(0)).toBe(false);
  });

  it('a size that is not a multiple of the granularity covers its tail with one more chunk', () => {
    const data = built(MiB, 64 * KiB, [[MiB - 512, 512]]);
    data.resize(MiB + 512);
    expect(data.chunkCount).toBe(17);
    expect(data.setChunkCount()).toBe(1);
    data.markRange(MiB, 512);
    expect(data.setChunkCount()).toBe(2);
  });
});
