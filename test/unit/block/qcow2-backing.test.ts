import { describe, expect, it } from 'vitest';
import { MemoryByteStore } from '../../../src/block/drivers/byte-store.ts';
import type { BackingReader, BlockStatus } from '../../../src/block/drivers/driver.ts';
import { defaultQcow2Image } from '../../../src/block/drivers/qcow2/create.ts';
import { backingFormat, parseHeader, resolveBackingFilename, serializeHeader } from '../../../src/block/drivers/qcow2/header.ts';
import { Qcow2Image } from '../../../src/block/drivers/qcow2/image.ts';
import { allocatedRuns, readsAsZero } from '../../../src/block/block-status.ts';

const MIB = 1 << 20;
const CLUSTER = 65536;

/** A raw image in memory: data everywhere, zero where it was never written. */
function rawBacking(bytes: Buffer): BackingReader {
  return {
    size: () => bytes.length,
    read: (offset, length) => Buffer.from(bytes.subarray(offset, offset + length)),
    readInto: async (offset, into) => void bytes.copy(into, 0, offset, offset + into.length),
    blockStatus: (offset, length): BlockStatus => {
      const zero = bytes.subarray(offset, offset + length).every((byte) => byte === 0);
      return { length, data: !zero, zero, allocated: true };
    },
  };
}

function overlay(size: number, backing?: BackingReader): { image: Qcow2Image; store: MemoryByteStore } {
  const store = new MemoryByteStore(defaultQcow2Image(BigInt(size), { file: 'base.raw', format: 'raw' }));
  const image = Qcow2Image.open(store);
  image.setBacking(backing);
  return { image, store };
}

describe('qcow2 backing file name in the header', () => {
  it('writes the name after the extensions with the format extension, and reads both back', () => {
    const bytes = defaultQcow2Image(BigInt(4 * MIB), { file: '/images/base.qcow2', format: 'qcow2' });
    const header = parseHeader(Buffer.concat([bytes.subarray(0, CLUSTER), Buffer.alloc(2 * MIB - CLUSTER)]), { readOnly: true });
    expect(header.backingFile).toBe('/images/base.qcow2');
    expect(backingFormat(header)).toBe('qcow2');
    const offset = Number(bytes.readBigUInt64BE(8));
    expect(bytes.subarray(offset, offset + bytes.readUInt32BE(16)).toString()).toBe('/images/base.qcow2');
    // The name moves when the extensions grow (a bitmaps extension added later), and stays readable.
    header.extensions.push({ type: 0x23852875, data: Buffer.alloc(24) });
    const rewritten = serializeHeader(header, CLUSTER);
    expect(Number(rewritten.readBigUInt64BE(8))).toBe(offset + 32);
    expect(rewritten.subarray(offset + 32).toString()).toBe('/images/base.qcow2');
  });

  it('resolves a relative name against the directory of the image that names it', () => {
    expect(resolveBackingFilename('/a/b/top.qcow2', 'mid.qcow2')).toBe('/a/b/mid.qcow2');
    expect(resolveBackingFilename('top.qcow2', 'mid.qcow2')).toBe('mid.qcow2');
    expect(resolveBackingFilename('/a/top.qcow2', '/c/base.raw')).toBe('/c/base.raw');
  });
});

describe('qcow2 reads through its backing image', () => {
  it('reads unallocated clusters from the backing image and allocated ones from itself', () => {
    const base = Buffer.alloc(4 * MIB, 0x11);
    const { image } = overlay(4 * MIB, rawBacking(base));
    image.write(MIB, Buffer.alloc(CLUSTER, 0x22));
    const read = image.read(MIB - 100, CLUSTER + 200);
    expect(read.subarray(0, 100).every((byte) => byte === 0x11)).toBe(true);
    expect(read.subarray(100, 100 + CLUSTER).every((byte) => byte === 0x22)).toBe(true);
    expect(read.subarray(100 + CLUSTER).every((byte) => byte === 0x11)).toBe(true);
  });

  it('copies the rest of a cluster from the backing image on a partial write', () => {
    const base = Buffer.alloc(4 * MIB, 0x11);
    const { image } = overlay(4 * MIB, rawBacking(base));
    image.write(2 * MIB + 512, Buffer.alloc(512, 0x33));
    image.setBacking(undefined);
    // Detached, the image alone still holds the whole cluster: its first 512 bytes came from below.
    const cluster = image.read(2 * MIB, CLUSTER);
    expect(cluster.subarray(0, 512).every((byte) => byte === 0x11)).toBe(true);
    expect(cluster.subarray(512, 1024).every((byte) => byte === 0x33)).toBe(true);
    expect(cluster.subarray(1024).every((byte) => byte === 0x11)).toBe(true);
    expect(image.read(3 * MIB, 16).equals(Buffer.alloc(16))).toBe(true);
  });

  it('reads zeroes past the end of a shorter backing image, and over zero clusters', () => {
    const { image } = overlay(4 * MIB, rawBacking(Buffer.alloc(MIB, 0x44)));
    const read = image.read(MIB - 8, 16);
    expect([...read]).toEqual([...Array(8).fill(0x44), ...Array(8).fill(0)]);
    image.writeZeroes(0, CLUSTER);
    expect(image.read(0, CLUSTER).equals(Buffer.alloc(CLUSTER))).toBe(true);
    expect(image.read(CLUSTER, 4)[0]).toBe(0x44);
  });

  it('fills every byte of a reused buffer: zero clusters, holes without a backing, and past the backing end', async () => {
    const { image } = overlay(4 * MIB, rawBacking(Buffer.alloc(MIB, 0x44)));
    image.writeZeroes(0, CLUSTER);
    const target = Buffer.alloc(2 * MIB, 0xff);
    await image.readInto(0, target);
    expect(target.subarray(0, CLUSTER).every((byte) => byte === 0)).toBe(true);
    expect(target.subarray(CLUSTER, MIB).every((byte) => byte === 0x44)).toBe(true);
    expect(target.subarray(MIB).every((byte) => byte === 0)).toBe(true);
    image.setBacking(undefined);
    await image.readInto(MIB, target.fill(0xff));
    expect(target.every((byte) => byte === 0)).toBe(true);
  });

  it('reports block status through the chain: unallocated here, data or zero as below', () => {
    const base = Buffer.alloc(4 * MIB);
    base.fill(0x55, 0, MIB);
    const { image } = overlay(4 * MIB, rawBacking(base));
    image.write(3 * MIB, Buffer.alloc(CLUSTER, 1));
    expect(image.blockStatus(0, MIB)).toEqual({ length: MIB, data: true, zero: false, allocated: false });
    expect(image.blockStatus(MIB, MIB)).toEqual({ length: MIB, data: false, zero: true, allocated: false });
    expect(image.blockStatus(3 * MIB, MIB)).toEqual({ length: CLUSTER, data: true, zero: false, allocated: true });
    expect(readsAsZero(image, MIB, MIB)).toBe(true);
    expect(readsAsZero(image, MIB - CLUSTER, 2 * CLUSTER)).toBe(false);
    expect([...allocatedRuns(image, 0, 4 * MIB)]).toEqual([[3 * MIB, 3 * MIB + CLUSTER]]);
  });
});
