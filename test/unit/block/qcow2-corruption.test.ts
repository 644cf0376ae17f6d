import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileByteStore, MemoryByteStore } from '../../../src/block/drivers/byte-store.ts';
import { BlockIoError } from '../../../src/block/io-error.ts';
import { MetadataGuard, overlappingSection, Qcow2Corruption, type MetadataMap } from '../../../src/block/drivers/qcow2/corruption.ts';
import { Qcow2Image } from '../../../src/block/drivers/qcow2/image.ts';
import { buildImage, CLUSTER, setHeaderField } from '../../support/qcow2-images.ts';

/** The layout of buildImage(): header, refcount table (cluster 1), refcount block (2), L1 table (3). */
function layout(changes: Partial<MetadataMap> = {}): MetadataMap {
  return {
    clusterSize: CLUSTER,
    l1TableOffset: 3 * CLUSTER,
    l1Size: 1,
    refcountTableOffset: CLUSTER,
    refcountTableBytes: CLUSTER,
    snapshotsOffset: 0,
    snapshotsBytes: 0,
    l2Offsets: () => [0],
    refcountBlockOffsets: () => [2 * CLUSTER],
    bitmapDirectory: null,
    ...changes,
  };
}

describe("QEMU's metadata overlap check", () => {
  it('finds the header first, then the sections in QEMU order, whole clusters at a time', () => {
    const map = layout({ l2Offsets: () => [4 * CLUSTER, 7 * CLUSTER], bitmapDirectory: { offset: 5 * CLUSTER, size: 40 } });
    expect(overlappingSection(map, 100, 8)).toBe('header');
    expect(overlappingSection(map, 3 * CLUSTER + 512, 8)).toBe('activeL1');
    expect(overlappingSection(map, CLUSTER + 8, 8)).toBe('refcountTable');
    expect(overlappingSection(map, 2 * CLUSTER, CLUSTER)).toBe('refcountBlock');
    expect(overlappingSection(map, 4 * CLUSTER + 4096, 1)).toBe('activeL2');
    expect(overlappingSection(map, 5 * CLUSTER + 60000, 8)).toBe('bitmapDirectory');
    expect(overlappingSection(map, 6 * CLUSTER, CLUSTER)).toBeNull();
    // A write that starts in a free cluster and runs into the next one overlaps it.
    expect(overlappingSection(map, 7 * CLUSTER - 8, 16)).toBe('activeL2');
    expect(overlappingSection(map, 100, 0)).toBeNull();
  });

  it('skips the section being written', () => {
    expect(overlappingSection(layout(), 2 * CLUSTER, CLUSTER, 'refcountBlock')).toBeNull();
    expect(overlappingSection(layout(), 3 * CLUSTER, 8, 'activeL1')).toBeNull();
    expect(overlappingSection(layout(), 10, 8, 'activeL1')).toBe('header');
  });

  it('takes a zero-sized region at offset 0 (a bitmaps bit without its extension) to cover everything, as its 64-bit arithmetic does', () => {
    const map = layout({ bitmapDirectory: { offset: 0, size: 0 } });
    expect(overlappingSection(map, 9 * CLUSTER, 8)).toBe('bitmapDirectory');
    expect(overlappingSection(map, 2 ** 40, CLUSTER)).toBe('bitmapDirectory');
    // A zero-sized region elsewhere covers only a write that spans its offset.
    const elsewhere = layout({ bitmapDirectory: { offset: 8 * CLUSTER, size: 0 } });
    expect(overlappingSection(elsewhere, 9 * CLUSTER, 8)).toBeNull();
    expect(overlappingSection(elsewhere, 7 * CLUSTER, 2 * CLUSTER)).toBe('bitmapDirectory');
  });

  it('lets a cached table wait for the write-back point, where it becomes the corruption with the whole cluster', () => {
    const guard = new MetadataGuard(layout({ refcountTableBytes: 2 * CLUSTER }));
    expect(guard.mayWriteBack(2 * CLUSTER, 'refcountBlock')).toBe(false);
    expect(guard.mayWriteBack(5 * CLUSTER, 'activeL2')).toBe(true);
    expect(() => guard.writeBack()).toThrow(new Qcow2Corruption('Preventing invalid write on metadata (overlaps with refcount table)', 2 * CLUSTER, CLUSTER));
  });
});

describe('qcow2 images QEMU opens though their metadata lies', () => {
  it('a refcount table over its own refcount block: the refcount update waits, unwritten, and the write-back before a new L2 table refuses it', () => {
    const image = buildImage();
    setHeaderField(image, 'refcountTableClusters', 2);
    const store = new MemoryByteStore(image);
    const qcow2 = Qcow2Image.open(store);
    expect(() => qcow2.write(0, Buffer.alloc(CLUSTER, 7))).toThrow(
      new Qcow2Corruption('Preventing invalid write on metadata (overlaps with refcount table)', 2 * CLUSTER, CLUSTER),
    );
    expect(store.writes).toEqual([]);
  });

  it('an unaligned refcount block offset is reported when the block is first used', () => {
    const image = buildImage();
    image.writeBigUInt64BE(BigInt(2 * CLUSTER + 512), CLUSTER);
    const qcow2 = Qcow2Image.open(new MemoryByteStore(image));
    expect(() => qcow2.write(0, Buffer.alloc(512))).toThrow(new Qcow2Corruption('Refblock offset 0x20200 unaligned (reftable index: 0)'));
  });

  it('an unaligned data cluster is reported with its L2 table and index', () => {
    const image = Buffer.concat([buildImage(), Buffer.alloc(CLUSTER)]);
    image.writeBigUInt64BE(BigInt(4 * CLUSTER) | (1n << 63n), 3 * CLUSTER);
    image.writeBigUInt64BE(BigInt(5 * CLUSTER + 512) | (1n << 63n), 4 * CLUSTER + 3 * 8);
    image.writeUInt16BE(1, 2 * CLUSTER + 4 * 2);
    const qcow2 = Qcow2Image.open(new MemoryByteStore(image));
    expect(() => qcow2.read(3 * CLUSTER, 512)).toThrow(new Qcow2Corruption('Cluster allocation offset 0x50200 unaligned (L2 offset: 0x40000, L2 index: 0x3)'));
  });

  it('reads host offsets past 32 bits whole: an unaligned one is named exactly, an aligned one past the file reads as zeroes', async () => {
    const image = Buffer.concat([buildImage(), Buffer.alloc(CLUSTER)]);
    image.writeBigUInt64BE(BigInt(4 * CLUSTER) | (1n << 63n), 3 * CLUSTER);
    image.writeBigUInt64BE(0x00ab_cdef_1234_0200n | (1n << 63n), 4 * CLUSTER + 3 * 8);
    image.writeBigUInt64BE(0x00ab_cdef_1234_0000n | (1n << 63n), 4 * CLUSTER + 5 * 8);
    image.writeUInt16BE(1, 2 * CLUSTER + 4 * 2);
    const qcow2 = Qcow2Image.open(new MemoryByteStore(image));
    const unaligned = new Qcow2Corruption('Cluster allocation offset 0xabcdef12340200 unaligned (L2 offset: 0x40000, L2 index: 0x3)');
    expect(() => qcow2.read(3 * CLUSTER, 512)).toThrow(unaligned);
    expect(() => qcow2.blockStatus(3 * CLUSTER, CLUSTER)).toThrow(unaligned);
    await expect(qcow2.readInto(3 * CLUSTER, Buffer.alloc(512))).rejects.toThrow(unaligned);
    expect(qcow2.blockStatus(5 * CLUSTER, CLUSTER)).toEqual({ length: CLUSTER, data: true, zero: false, allocated: true });
    expect(qcow2.read(5 * CLUSTER, CLUSTER).equals(Buffer.alloc(CLUSTER))).toBe(true);
  });

  it('a dirty image whose used cluster has refcount 0 is repaired in place and marked clean', () => {
    const image = Buffer.concat([buildImage({ incompatible: 1n }), Buffer.alloc(3 * CLUSTER)]);
    image.writeBigUInt64BE(BigInt(4 * CLUSTER) | (1n << 63n), 3 * CLUSTER);
    image.writeBigUInt64BE(BigInt(6 * CLUSTER) | (1n << 63n), 4 * CLUSTER);
    image.writeUInt16BE(1, 2 * CLUSTER + 4 * 2);
    image.writeUInt16BE(3, 2 * CLUSTER + 5 * 2);
    const store = new MemoryByteStore(image);
    Qcow2Image.open(store);
    const repaired = store.contents();
    expect(repaired.readBigUInt64BE(72)).toBe(0n);
    expect([0, 1, 2, 3, 4, 5, 6].map((cluster) => repaired.readUInt16BE(2 * CLUSTER + cluster * 2))).toEqual([1, 1, 1, 1, 1, 0, 1]);
  });

  it('a dirty image opened read-only is neither repaired nor written', () => {
    const store = new MemoryByteStore(buildImage({ incompatible: 1n }), true);
    Qcow2Image.open(store);
    expect(store.writes).toEqual([]);
  });
});

describe('table offsets far beyond any file', () => {
  it("read as nothing up to QEMU's largest request, fail with EIO past it; writes there fail with EFBIG or EIO", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-far-'));
    try {
      const file = path.join(dir, 'f');
      fs.writeFileSync(file, Buffer.alloc(512, 1));
      const store = FileByteStore.open(file, { readOnly: false });
      const buffer = Buffer.alloc(8, 0xff);
      expect(store.pread(buffer, 2 ** 56)).toBe(0);
      expect(() => store.pread(buffer, 2 ** 63)).toThrow(new BlockIoError(5));
      expect(() => store.pwrite(buffer, 2 ** 56)).toThrow(new BlockIoError(27));
      expect(() => store.pwrite(buffer, 2 ** 63)).toThrow(new BlockIoError(5));
      store.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an L1 entry marked COPIED without a table gets one of its own on the first write (QEMU 7.2 aborts)', () => {
    const image = buildImage();
    image.writeBigUInt64BE(1n << 63n, 3 * CLUSTER);
    const qcow2 = Qcow2Image.open(new MemoryByteStore(image));
    qcow2.write(0, Buffer.alloc(CLUSTER, 3));
    expect(qcow2.read(0, CLUSTER).equals(Buffer.alloc(CLUSTER, 3))).toBe(true);
  });
});
