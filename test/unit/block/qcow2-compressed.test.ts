import { createHash } from 'node:crypto';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { readsAsZero } from '../../../src/block/block-status.ts';
import { MemoryByteStore } from '../../../src/block/drivers/byte-store.ts';
import { defaultQcow2Image } from '../../../src/block/drivers/qcow2/create.ts';
import { Qcow2Image } from '../../../src/block/drivers/qcow2/image.ts';
import { BlockIoError } from '../../../src/block/io-error.ts';

const CLUSTER = 65536;
const COMPRESSED = 1n << 62n;
/** cluster_bits 16: the offset takes bits 0..53, the extra-sector count the bits above. */
const SECTOR_SHIFT = 62n - 8n;

function newImage(size = 4 * 1024 * 1024): { image: Qcow2Image; store: MemoryByteStore } {
  const store = new MemoryByteStore(defaultQcow2Image(BigInt(size)));
  return { image: Qcow2Image.open(store), store };
}

/** The L2 entry of guest cluster `index` (first L2 table), as stored. */
function l2Entry(store: MemoryByteStore, index: number): bigint {
  const header = Buffer.alloc(48);
  store.pread(header, 0);
  const l1 = Buffer.alloc(8);
  store.pread(l1, Number(header.readBigUInt64BE(40)));
  const entry = Buffer.alloc(8);
  store.pread(entry, Number(l1.readBigUInt64BE(0) & 0x00fffffffffffe00n) + index * 8);
  return entry.readBigUInt64BE(0);
}

function refcount(store: MemoryByteStore, cluster: number): number {
  const entry = Buffer.alloc(2);
  store.pread(entry, 2 * CLUSTER + cluster * 2);
  return entry.readUInt16BE(0);
}

const text = (length: number) => Buffer.from('qblockd compressed cluster\n'.repeat(Math.ceil(length / 27))).subarray(0, length);
/** Incompressible bytes: a SHA-256 chain from `seed`. */
const noise = (length: number, seed: number) => {
  const blocks: Buffer[] = [];
  let block = Buffer.from([seed]);
  for (let done = 0; done < length; done += 32) blocks.push((block = createHash('sha256').update(block).digest()));
  return Buffer.concat(blocks).subarray(0, length);
};

describe('qcow2 compressed clusters', () => {
  it('stores a compressible cluster as a raw deflate stream behind a compressed L2 descriptor and reads it back', () => {
    const { image, store } = newImage();
    const data = text(CLUSTER);
    image.writeCompressed(CLUSTER, data);
    const entry = l2Entry(store, 1);
    expect(entry & COMPRESSED).toBe(COMPRESSED);
    expect(entry >> 63n).toBe(0n);
    const host = Number(entry & ((1n << SECTOR_SHIFT) - 1n));
    const sectors = Number(entry >> SECTOR_SHIFT) & 0xff;
    const stored = Buffer.alloc(sectors * 512 + 512 - (host % 512));
    store.pread(stored, host);
    expect(zlib.inflateRawSync(stored, { finishFlush: zlib.constants.Z_SYNC_FLUSH }).subarray(0, CLUSTER)).toEqual(data);
    expect(image.read(CLUSTER, CLUSTER)).toEqual(data);
    expect(readsAsZero(image, CLUSTER, CLUSTER)).toBe(false);
  });

  it('packs consecutive compressed clusters into one host cluster, each a reference of it', () => {
    const { image, store } = newImage();
    image.writeCompressed(0, Buffer.concat([text(CLUSTER), Buffer.alloc(CLUSTER, 7)]));
    const first = l2Entry(store, 0) & ((1n << SECTOR_SHIFT) - 1n);
    const second = l2Entry(store, 1) & ((1n << SECTOR_SHIFT) - 1n);
    expect(Math.floor(Number(first) / CLUSTER)).toBe(Math.floor(Number(second) / CLUSTER));
    expect(second).toBeGreaterThan(first);
    expect(refcount(store, Math.floor(Number(first) / CLUSTER))).toBe(2);
    expect(image.read(0, 2 * CLUSTER)).toEqual(Buffer.concat([text(CLUSTER), Buffer.alloc(CLUSTER, 7)]));
  });

  it('writes an incompressible cluster as an ordinary one', () => {
    const { image, store } = newImage();
    const data = noise(CLUSTER, 1);
    image.writeCompressed(0, data);
    const entry = l2Entry(store, 0);
    expect(entry & COMPRESSED).toBe(0n);
    expect(entry >> 63n).toBe(1n);
    expect(image.read(0, CLUSTER)).toEqual(data);
  });

  it('refuses to replace an allocated cluster (EIO) and unaligned requests (EINVAL), as QEMU does', () => {
    const { image } = newImage();
    image.write(0, Buffer.alloc(512, 1));
    expect(() => image.writeCompressed(0, text(CLUSTER))).toThrow(new BlockIoError(5));
    expect(() => image.writeCompressed(512, text(CLUSTER))).toThrow(new BlockIoError(22));
    image.writeCompressed(CLUSTER, text(CLUSTER));
    expect(() => image.writeCompressed(CLUSTER, text(CLUSTER))).toThrow(new BlockIoError(5));
  });

  it('pads the short last cluster of an image with zeroes', () => {
    const size = 3 * CLUSTER + 4096;
    const { image } = newImage(size);
    image.writeCompressed(3 * CLUSTER, text(4096));
    expect(image.read(3 * CLUSTER, 4096)).toEqual(text(4096));
  });

  it('overwrites a compressed cluster with a normal write and keeps its neighbours', () => {
    const { image } = newImage();
    image.writeCompressed(0, Buffer.concat([text(CLUSTER), text(CLUSTER)]));
    image.write(100, Buffer.alloc(10, 9));
    const expected = text(CLUSTER);
    Buffer.alloc(10, 9).copy(expected, 100);
    expect(image.read(0, CLUSTER)).toEqual(expected);
    expect(image.read(CLUSTER, CLUSTER)).toEqual(text(CLUSTER));
  });
});
