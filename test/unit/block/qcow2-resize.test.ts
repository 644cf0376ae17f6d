import { describe, expect, it } from 'vitest';
import { BitmapData } from '../../../src/block/bitmap/bitmap-data.ts';
import { MemoryByteStore } from '../../../src/block/drivers/byte-store.ts';
import { Qcow2FormatError, Qcow2Image } from '../../../src/block/drivers/qcow2/image.ts';
import { buildImage, CLUSTER } from '../../support/qcow2-images.ts';

const MiB = 1024 * 1024;
const noBitmapCheck = () => {};

function refcountOf(image: Buffer, cluster: number): number {
  const block = Number(image.readBigUInt64BE(CLUSTER));
  return image.readUInt16BE(block + cluster * 2);
}

function header(image: Buffer): { size: number; l1Size: number; l1Offset: number } {
  return { size: Number(image.readBigUInt64BE(24)), l1Size: image.readUInt32BE(36), l1Offset: Number(image.readBigUInt64BE(40)) };
}

describe('qcow2 resize', () => {
  it('grows within the L1 table: only the header size changes', () => {
    const store = new MemoryByteStore(buildImage({ virtualSize: 64 * MiB }));
    const image = Qcow2Image.open(store);
    image.resize(256 * MiB, noBitmapCheck);
    expect(header(store.contents())).toEqual({ size: 256 * MiB, l1Size: 1, l1Offset: 3 * CLUSTER });
    image.write(200 * MiB, Buffer.alloc(4096, 7));
    const reopened = Qcow2Image.open(new MemoryByteStore(store.contents()));
    expect(reopened.virtualSize).toBe(256 * MiB);
    expect(reopened.read(200 * MiB, 4096).equals(Buffer.alloc(4096, 7))).toBe(true);
  });

  it('grows the L1 table to exactly what the new size needs, in a fresh cluster, and frees the old one', () => {
    const store = new MemoryByteStore(buildImage({ virtualSize: 64 * MiB }));
    const image = Qcow2Image.open(store);
    image.write(MiB, Buffer.alloc(CLUSTER, 0xab));
    image.resize(2048 * MiB + 512, noBitmapCheck);
    const bytes = store.contents();
    const { l1Size, l1Offset, size } = header(bytes);
    expect(size).toBe(2048 * MiB + 512);
    // 512 MiB per L1 entry with 64 KiB clusters: 2 GiB + 512 bytes needs a fifth entry.
    expect(l1Size).toBe(5);
    expect(l1Offset).not.toBe(3 * CLUSTER);
    expect(refcountOf(bytes, 3)).toBe(0);
    expect(refcountOf(bytes, l1Offset / CLUSTER)).toBe(1);
    image.write(2048 * MiB, Buffer.alloc(512, 0xcd));
    const reopened = Qcow2Image.open(new MemoryByteStore(store.contents()));
    expect(reopened.read(MiB, CLUSTER).equals(Buffer.alloc(CLUSTER, 0xab))).toBe(true);
    expect(reopened.read(2048 * MiB, 512).equals(Buffer.alloc(512, 0xcd))).toBe(true);
  });

  it('shrinking frees the data clusters past the new end and the L2 tables left covering nothing', () => {
    const store = new MemoryByteStore(buildImage({ virtualSize: 1024 * MiB }));
    const image = Qcow2Image.open(store);
    image.write(0, Buffer.alloc(CLUSTER, 1));
    image.write(20 * MiB, Buffer.alloc(2 * CLUSTER, 2));
    image.write(600 * MiB, Buffer.alloc(CLUSTER, 3));
    const before = store.contents();
    const used = (bytes: Buffer) => Array.from({ length: bytes.length / CLUSTER }, (_, cluster) => refcountOf(bytes, cluster)).filter(Boolean).length;
    image.resize(16 * MiB, noBitmapCheck);
    const after = store.contents();
    // Two data clusters past 16 MiB, one past 512 MiB and that one's L2 table.
    expect(used(before) - used(after)).toBe(4);
    expect(header(after).size).toBe(16 * MiB);
    image.resize(1024 * MiB, noBitmapCheck);
    expect(image.read(20 * MiB, 2 * CLUSTER).equals(Buffer.alloc(2 * CLUSTER))).toBe(true);
    expect(image.read(600 * MiB, CLUSTER).equals(Buffer.alloc(CLUSTER))).toBe(true);
    expect(image.read(0, CLUSTER).equals(Buffer.alloc(CLUSTER, 1))).toBe(true);
  });

  it('a size that ends inside a cluster keeps that cluster and can be written up to its end', () => {
    const store = new MemoryByteStore(buildImage({ virtualSize: 64 * MiB }));
    const image = Qcow2Image.open(store);
    image.write(16 * MiB, Buffer.alloc(CLUSTER, 9));
    image.resize(16 * MiB + 512, noBitmapCheck);
    expect(image.read(16 * MiB, 512).equals(Buffer.alloc(512, 9))).toBe(true);
    image.write(16 * MiB, Buffer.alloc(512, 4));
    expect(() => image.read(16 * MiB, 1024)).toThrow(Qcow2FormatError);
  });

  it('refuses what QEMU refuses, before changing anything: unaligned sizes, an L1 table over 32 MiB, unusable bitmaps, read-only images', () => {
    const store = new MemoryByteStore(buildImage({ virtualSize: 64 * MiB }));
    const image = Qcow2Image.open(store);
    const before = store.contents();
    expect(() => image.resize(MiB + 1, noBitmapCheck)).toThrow('The new size must be a multiple of 512');
    expect(() => image.resize(2 ** 62, noBitmapCheck)).toThrow('Failed to grow the L1 table: File too large');
    const refuse = () => {
      throw new Error('bitmap in use');
    };
    expect(() => image.resize(128 * MiB, refuse)).toThrow('bitmap in use');
    expect(store.contents().equals(before)).toBe(true);
    const readOnly = Qcow2Image.open(new MemoryByteStore(buildImage(), true));
    expect(() => readOnly.resize(128 * MiB, noBitmapCheck)).toThrow(Qcow2FormatError);
  });

  it('bitmaps stored after a resize have tables of the new size and load again', () => {
    const store = new MemoryByteStore(buildImage({ virtualSize: 64 * MiB }));
    const image = Qcow2Image.open(store);
    image.resize(4096 * MiB, noBitmapCheck);
    const data = new BitmapData({ diskSize: 4096 * MiB, granularity: 512 });
    data.markRange(4000 * MiB, MiB);
    image.storeBitmaps([{ name: 'b', granularity: 512, enabled: true, data }]);
    const reopened = Qcow2Image.open(new MemoryByteStore(store.contents()));
    const loaded = new BitmapData({ diskSize: reopened.virtualSize, granularity: 512 });
    reopened.loadBitmap('b', loaded);
    expect(loaded.sha256()).toBe(data.sha256());
  });
});

describe('qcow2 reopen', () => {
  it('becomes writable only over a writable store, and flushes going read-only', () => {
    const store = new MemoryByteStore(buildImage(), true);
    const image = Qcow2Image.open(store);
    expect(() => image.setReadOnly(false)).toThrow('Block node is read-only');
    store.setReadOnly(false);
    image.setReadOnly(false);
    image.write(0, Buffer.alloc(512, 1));
    image.setReadOnly(true);
    expect(store.writes.at(-1)).toBe('flush');
    expect(() => image.write(0, Buffer.alloc(512))).toThrow('Block node is read-only');
  });
});

describe('qcow2 store of bitmaps whose bits are already on disk', () => {
  function bytesWritten(store: MemoryByteStore, from: number): number {
    return store.writes.slice(from).reduce((sum, write) => sum + (write === 'flush' ? 0 : write.data.length), 0);
  }

  it('rewrites only the directory and header for an unchanged bitmap, the data again once its bits change', () => {
    const store = new MemoryByteStore(buildImage({ virtualSize: 1024 * MiB }));
    const image = Qcow2Image.open(store);
    const data = new BitmapData({ diskSize: 1024 * MiB, granularity: 512 });
    data.markRange(0, 512 * MiB);
    image.storeBitmaps([{ name: 'b', granularity: 512, enabled: true, data }]);
    const reopened = Qcow2Image.open(store);
    const loaded = new BitmapData({ diskSize: 1024 * MiB, granularity: 512 });
    reopened.loadBitmap('b', loaded);
    reopened.markBitmapsInUse();
    let mark = store.writes.length;
    reopened.storeBitmaps([{ name: 'b', granularity: 512, enabled: false, data: loaded }]);
    expect(bytesWritten(store, mark)).toBeLessThan(CLUSTER + 4096);
    expect(reopened.storedBitmaps()).toEqual([{ name: 'b', granularity: 512, inUse: false, auto: false }]);
    loaded.markRange(1000 * MiB, 512);
    mark = store.writes.length;
    reopened.storeBitmaps([{ name: 'b', granularity: 512, enabled: true, data: loaded }]);
    expect(bytesWritten(store, mark)).toBeGreaterThan(CLUSTER);
    const check = new BitmapData({ diskSize: 1024 * MiB, granularity: 512 });
    Qcow2Image.open(new MemoryByteStore(store.contents())).loadBitmap('b', check);
    expect(check.sha256()).toBe(loaded.sha256());
  });
});
