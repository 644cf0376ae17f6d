import { describe, expect, it } from 'vitest';
import { allocatedRuns, readsAsZero, statusRuns } from '../../../src/block/block-status.ts';
import { BlkdebugDriver } from '../../../src/block/drivers/blkdebug.ts';
import { MemoryByteStore } from '../../../src/block/drivers/byte-store.ts';
import type { BlockDriver } from '../../../src/block/drivers/driver.ts';
import { NullDriver } from '../../../src/block/drivers/null-co.ts';
import { defaultQcow2Image } from '../../../src/block/drivers/qcow2/create.ts';
import { Qcow2Image } from '../../../src/block/drivers/qcow2/image.ts';
import { BlockNode } from '../../../src/block/node.ts';

const MIB = 1 << 20;
const CLUSTER = 65536;

const driverWithoutStatus: BlockDriver = {
  format: 'file',
  size: () => MIB,
  read: (_offset, length) => Buffer.alloc(length),
  write() {},
  writeZeroes() {},
  discard() {},
  flush() {},
  imageInfo: () => ({ 'virtual-size': MIB, filename: 'plain', format: 'file' }),
  close() {},
};

/** A 64 MiB qcow2 image: data in clusters 2-3, a zero cluster at 5, data again at 6; the rest unallocated. */
function image(): Qcow2Image {
  const qcow2 = Qcow2Image.open(new MemoryByteStore(defaultQcow2Image(BigInt(64 * MIB))));
  qcow2.write(2 * CLUSTER, Buffer.alloc(2 * CLUSTER, 1));
  qcow2.writeZeroes(5 * CLUSTER, CLUSTER);
  qcow2.write(6 * CLUSTER, Buffer.alloc(CLUSTER, 2));
  return qcow2;
}

function nullNode(readZeroes: boolean): BlockNode {
  return new BlockNode('n0', new NullDriver('null-co', { size: MIB, 'read-zeroes': readZeroes }, 'null-co://'), [], false, true);
}

describe('block status, the one interface of NBD and backup', () => {
  it('walks a qcow2 image in runs of one kind', () => {
    const runs = [...statusRuns(image(), 0, 8 * CLUSTER)].map(({ offset, length, data, zero, allocated }) => [offset / CLUSTER, length / CLUSTER, data, zero, allocated]);
    expect(runs).toEqual([
      [0, 2, false, true, false],
      [2, 2, true, false, true],
      [4, 1, false, true, false],
      [5, 1, false, true, true],
      [6, 1, true, false, true],
      [7, 1, false, true, false],
    ]);
  });

  it('gives what sync=top copies: allocated runs, data and zero clusters merged', () => {
    const qcow2 = image();
    expect([...allocatedRuns(qcow2, 0, 64 * MIB)]).toEqual([
      [2 * CLUSTER, 4 * CLUSTER],
      [5 * CLUSTER, 7 * CLUSTER],
    ]);
    expect([...allocatedRuns(qcow2, 3 * CLUSTER, CLUSTER)]).toEqual([[3 * CLUSTER, 4 * CLUSTER]]);
  });

  it('knows where a copy can write zeroes without reading', () => {
    const qcow2 = image();
    expect(readsAsZero(qcow2, 0, 2 * CLUSTER)).toBe(true);
    expect(readsAsZero(qcow2, 4 * CLUSTER, 2 * CLUSTER)).toBe(true);
    expect(readsAsZero(qcow2, 4 * CLUSTER, 3 * CLUSTER)).toBe(false);
    expect(readsAsZero(qcow2, 0, 64 * MIB)).toBe(false);
    expect(readsAsZero(qcow2, 7 * CLUSTER, 64 * MIB - 7 * CLUSTER)).toBe(true);
  });

  it('null-co reads zeroes either way, but reports them only with read-zeroes=on, as QEMU does', () => {
    const quiet = nullNode(false).blockStatus(0, MIB);
    expect(quiet).toMatchObject({ length: MIB, data: false, zero: false, allocated: false });
    expect(readsAsZero(nullNode(false), 0, MIB)).toBe(true);
    expect([...allocatedRuns(nullNode(false), 0, MIB)]).toEqual([]);
    expect(nullNode(true).blockStatus(0, MIB)).toMatchObject({ length: MIB, data: false, zero: true, allocated: true });
    expect([...allocatedRuns(nullNode(true), 0, MIB)]).toEqual([[0, MIB]]);
  });

  it('passes through blkdebug; a driver without block status holds data everywhere', () => {
    const debug = new BlkdebugDriver(nullNode(true).asChild(), [], [], () => 'blkdebug::null-co://');
    expect(debug.blockStatus(0, MIB)).toMatchObject({ data: false, zero: true, allocated: true });
    const over = new BlockNode('d0', debug, [], false, true);
    expect([...allocatedRuns(over, 0, MIB)]).toEqual([[0, MIB]]);
    const plain = new BlockNode('p0', driverWithoutStatus, [], false, true);
    expect(plain.blockStatus(4096, 8192)).toEqual({ length: 8192, data: true, zero: false, allocated: true });
    expect(readsAsZero(plain, 0, MIB)).toBe(false);
  });
});
