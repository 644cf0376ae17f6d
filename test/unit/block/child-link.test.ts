import { describe, expect, it } from 'vitest';
import { BitmapData } from '../../../src/block/bitmap/bitmap-data.ts';
import { DirtyBitmap } from '../../../src/block/bitmap/dirty-bitmap.ts';
import { MemoryByteStore, type ByteStore } from '../../../src/block/drivers/byte-store.ts';
import type { BlockDriver } from '../../../src/block/drivers/driver.ts';
import { NullDriver } from '../../../src/block/drivers/null-co.ts';
import { BlockNode } from '../../../src/block/node.ts';

const KiB = 1024;

/** A protocol node over memory: what a format driver above reads and writes as bytes. */
function storeNode(name: string, bytes: Buffer): BlockNode {
  const store: ByteStore = new MemoryByteStore(bytes);
  const driver: BlockDriver = {
    format: 'file',
    byteStore: store,
    size: () => store.size(),
    read: (offset, length) => {
      const buffer = Buffer.alloc(length);
      store.pread(buffer, offset);
      return buffer;
    },
    write: (offset, data) => store.pwrite(data, offset),
    writeZeroes: (offset, length) => store.pwrite(Buffer.alloc(length), offset),
    discard() {},
    flush() {},
    imageInfo: () => ({ 'virtual-size': store.size(), filename: name, format: 'file' }),
    close() {},
  };
  return new BlockNode(name, driver, [], false, true);
}

function recording(node: BlockNode, granularity: number): DirtyBitmap {
  const bitmap = new DirtyBitmap('b', new BitmapData({ diskSize: node.size(), granularity }), { enabled: true, persistent: false });
  node.addBitmap(bitmap);
  return bitmap;
}

describe('ChildLink: a parent driver keeps its link while the graph moves it', () => {
  it('reads and writes the node the link is on now, through the same byte store', () => {
    const first = storeNode('first', Buffer.alloc(4 * KiB, 0x11));
    const second = storeNode('second', Buffer.alloc(4 * KiB, 0x22));
    const link = first.asChild();
    const store = link.byteStore;
    const buffer = Buffer.alloc(16);
    store.pread(buffer, 0);
    expect(buffer[0]).toBe(0x11);
    link.node = second;
    store.pread(buffer, 0);
    expect(buffer[0]).toBe(0x22);
    store.pwrite(Buffer.alloc(16, 0x33), 0);
    expect(second.read(0, 1)[0]).toBe(0x33);
    expect(first.read(0, 1)[0]).toBe(0x11);
  });

  it('goes through the data path of a node without a byte store (its bitmaps see the writes)', () => {
    const file = storeNode('file', Buffer.alloc(4 * KiB));
    const link = file.asChild();
    const store = link.byteStore;
    const filter = new BlockNode('null', new NullDriver('null-co', { size: 1 << 20, 'read-zeroes': true }, 'null-co://'), [], false, true);
    const bitmap = recording(filter, 512);
    link.node = filter;
    store.pwrite(Buffer.alloc(1024, 1), 2048);
    expect(bitmap.data.dirtyBytes()).toBe(1024);
    expect(store.size()).toBe(1 << 20);
  });

  it('a write past the end of the file grows its bitmaps to whole sectors first, as QEMU does, and marks it', () => {
    const file = storeNode('file', Buffer.alloc(1000));
    const bitmap = recording(file, 512);
    file.asChild().byteStore.pwrite(Buffer.alloc(100, 7), 1500);
    expect(bitmap.data.diskSize).toBe(2048);
    expect(bitmap.data.dirtyBytes()).toBe(1024);
  });
});
