import { popcount32, type BitmapData } from './bitmap-data.ts';

/** A bitmap summarised over a byte range: per pixel, how much of it is dirty (0 clean, 1..255 some, 255 all). */
export interface DirtyDensity {
  /** The byte range actually drawn: the requested one widened to whole chunks and cut at the disk's end. */
  offset: number;
  length: number;
  /** One byte per pixel; fewer pixels than asked when the range holds fewer chunks. */
  density: Uint8Array;
}

/**
 * Computes the density of [offset, offset+length) at `width` pixels from the
 * bitmap's page structure: clean pages cost nothing, full pages are counted
 * arithmetically, other pages word by word. Pixel p holds chunks
 * [floor(p*n/w), floor((p+1)*n/w)) of the range's n chunks.
 */
export function dirtyDensity(data: BitmapData, offset: number, length: number, width: number): DirtyDensity {
  const granularity = data.granularity;
  const firstChunk = Math.min(Math.floor(offset / granularity), data.chunkCount);
  const endChunk = Math.min(Math.ceil((offset + length) / granularity), data.chunkCount);
  const chunks = Math.max(0, endChunk - firstChunk);
  const pixels = Math.max(0, Math.min(width, chunks));
  const drawnOffset = firstChunk * granularity;
  const drawnLength = Math.min(endChunk * granularity, data.diskSize) - drawnOffset;
  if (pixels === 0) return { offset: drawnOffset, length: Math.max(0, drawnLength), density: new Uint8Array(0) };

  const pixelStart = (pixel: number) => firstChunk + Math.floor((pixel * chunks) / pixels);
  const pixelOf = (chunk: number) => Math.floor(((chunk - firstChunk + 1) * pixels - 1) / chunks);
  const dirty = new Float64Array(pixels);

  const addRun = (from: number, to: number) => {
    for (let pixel = pixelOf(from); from < to; pixel++) {
      const next = Math.min(to, pixelStart(pixel + 1));
      dirty[pixel]! += next - from;
      from = next;
    }
  };

  data.forEachDirtySpan(firstChunk, endChunk, (pageFirst, pageLength, words) => {
    const from = Math.max(pageFirst, firstChunk);
    const to = Math.min(pageFirst + pageLength, endChunk);
    if (words === null) return addRun(from, to);
    // Walk the words with the current pixel's end in hand: no division per word.
    let pixel = pixelOf(from);
    let boundary = pixelStart(pixel + 1);
    for (let w = (from - pageFirst) >>> 5; pageFirst + w * 32 < to; w++) {
      let word = words[w]!;
      if (word === 0) continue;
      const wordFirst = pageFirst + w * 32;
      if (wordFirst < from) word &= ~((1 << (from - wordFirst)) - 1);
      if (wordFirst + 32 > to) word &= (1 << (to - wordFirst)) - 1;
      while (wordFirst >= boundary) boundary = pixelStart(++pixel + 1);
      if (wordFirst + 32 <= boundary) {
        dirty[pixel]! += popcount32(word >>> 0);
        continue;
      }
      for (let bit = 0; bit < 32; bit++) {
        if (wordFirst + bit >= boundary) boundary = pixelStart(++pixel + 1);
        if ((word >>> bit) & 1) dirty[pixel]!++;
      }
    }
  });

  const density = new Uint8Array(pixels);
  for (let pixel = 0; pixel < pixels; pixel++) {
    const set = dirty[pixel]!;
    if (set === 0) continue;
    const capacity = pixelStart(pixel + 1) - pixelStart(pixel);
    density[pixel] = Math.max(1, Math.round((set * 255) / capacity));
  }
  return { offset: drawnOffset, length: drawnLength, density };
}
