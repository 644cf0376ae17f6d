import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MemoryByteStore } from '../../../src/block/drivers/byte-store.ts';
import { FileDriver } from '../../../src/block/drivers/file.ts';
import { defaultQcow2Image } from '../../../src/block/drivers/qcow2/create.ts';
import { Qcow2Image } from '../../../src/block/drivers/qcow2/image.ts';

const CLUSTER = 65536;

/** A buffer of garbage: every byte readInto does not write stays 0xee and fails the comparison. */
const garbage = (length: number) => Buffer.alloc(length, 0xee);

describe('readInto, the read NBD serves from reused buffers', () => {
  it('gives qcow2 the bytes read gives: data, zero, unallocated and compressed clusters, across host runs', async () => {
    const image = Qcow2Image.open(new MemoryByteStore(defaultQcow2Image(BigInt(16 * CLUSTER))));
    image.write(CLUSTER + 100, Buffer.alloc(2 * CLUSTER, 1));
    image.write(9 * CLUSTER, Buffer.alloc(CLUSTER, 2));
    image.write(4 * CLUSTER, Buffer.alloc(CLUSTER, 3));
    image.writeZeroes(5 * CLUSTER, CLUSTER);
    image.writeCompressed(12 * CLUSTER, Buffer.alloc(CLUSTER, 4));
    for (const [offset, length] of [[0, 16 * CLUSTER], [CLUSTER + 50, 3 * CLUSTER], [5 * CLUSTER - 7, CLUSTER + 14], [9 * CLUSTER + 1, 1], [12 * CLUSTER - 5, CLUSTER], [0, 0]] as const) {
      const into = garbage(length);
      await image.readInto(offset, into);
      expect(into.equals(image.read(offset, length))).toBe(true);
    }
  });

  it('reads a file past its end as zeroes', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-read-into-'));
    try {
      const file = path.join(dir, 'disk.img');
      fs.writeFileSync(file, Buffer.alloc(1000, 9));
      const driver = new FileDriver(file, true);
      const into = garbage(1024);
      await driver.readInto(512, into);
      expect(into.equals(Buffer.concat([Buffer.alloc(488, 9), Buffer.alloc(536)]))).toBe(true);
      expect(driver.read(512, 1024).equals(into)).toBe(true);
      driver.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
