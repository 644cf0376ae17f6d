import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { BitmapData } from '../../src/block/bitmap/bitmap-data.ts';
import { MemoryByteStore } from '../../src/block/drivers/byte-store.ts';
import { Qcow2Image } from '../../src/block/drivers/qcow2/image.ts';
import { describeInterop, qemuImg, qemuImgBitmaps, qemuImgCheck } from '../support/qemu.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-crash-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function bitmap(granularity: number, extents: Array<[number, number]>): BitmapData {
  const data = new BitmapData({ diskSize: 256 << 20, granularity });
  for (const [offset, length] of extents) data.markRange(offset, length);
  return data;
}

/** Replays the first `count` writes of a recorded operation onto the image it started from. */
function imageAfter(base: Buffer, store: MemoryByteStore, count: number): Buffer {
  const image = new MemoryByteStore(base);
  for (const write of store.writes.slice().filter((w) => w !== 'flush').slice(0, count)) {
    if (typeof write === 'object') image.pwrite(write.data, write.offset);
  }
  return image.contents();
}

function checkEveryPrefix(label: string, base: Buffer, operation: (image: Qcow2Image) => void, allowed: string[][]): void {
  const store = new MemoryByteStore(base);
  operation(Qcow2Image.open(store));
  const writes = store.writes.filter((w) => w !== 'flush').length;
  expect(writes, label).toBeGreaterThan(3);
  for (let count = 0; count <= writes; count++) {
    const file = path.join(dir, `${label}-${count}.qcow2`);
    fs.writeFileSync(file, imageAfter(base, store, count));
    const check = qemuImgCheck(file);
    expect(check.corruptions, `${label}: crash after ${count}/${writes} writes`).toBe(0);
    const names = qemuImgBitmaps(file).map((b) => b.name).sort();
    expect(allowed.map((a) => [...a].sort().join(',')), `${label}: bitmaps after ${count} writes`).toContain(names.join(','));
    fs.rmSync(file);
  }
}

describeInterop('qcow2 crash safety: a crash after any write leaves a consistent image', { qemuImg: true }, () => {
  const basePath = path.join(dir, 'base.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', basePath, '256M');
  const base = fs.readFileSync(basePath);

  it('storing new bitmaps: old (none) or new set, never corruption', () => {
    checkEveryPrefix('store', base, (image) => {
      image.storeBitmaps([
        { name: 'a', granularity: 65536, enabled: true, data: bitmap(65536, [[0, 1 << 20], [100 << 20, 5 << 20]]) },
        { name: 'b', granularity: 512, enabled: false, data: bitmap(512, [[3 << 20, 64 << 10]]) },
      ]);
    }, [[], ['a', 'b']]);
  });

  it('re-storing and removing existing bitmaps', () => {
    const store = new MemoryByteStore(base);
    const image = Qcow2Image.open(store);
    image.storeBitmaps([
      { name: 'a', granularity: 65536, enabled: true, data: bitmap(65536, [[0, 1 << 20]]) },
      { name: 'b', granularity: 4096, enabled: true, data: bitmap(4096, [[8 << 20, 1 << 20]]) },
    ]);
    const withBitmaps = store.contents();
    checkEveryPrefix('restore', withBitmaps, (reopened) => {
      reopened.markBitmapsInUse();
      reopened.storeBitmaps([{ name: 'a', granularity: 65536, enabled: false, data: bitmap(65536, [[0, 200 << 20]]) }]);
    }, [['a', 'b']]);
    checkEveryPrefix('remove', withBitmaps, (reopened) => reopened.removeBitmap('a'), [['a', 'b'], ['b']]);
  });

  it('guest writes that allocate clusters and L2 tables', () => {
    checkEveryPrefix('write', base, (image) => {
      image.write(0, Buffer.alloc(10000, 1));
      image.write(200 << 20, Buffer.alloc(4096, 2));
      image.writeZeroes(8192, 4096);
    }, [[]]);
  });
});
