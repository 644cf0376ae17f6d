import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FileByteStore } from '../../../src/block/drivers/byte-store.ts';

const MIB = 1024 * 1024;

describe('thread-pool reads gathered over an event-loop turn', () => {
  let dir: string;
  let file: string;
  const content = Buffer.alloc(3 * MIB + 1000);
  for (let at = 0; at < content.length; at += 4) content.writeUInt32BE(at, at);

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-read-batch-'));
    file = path.join(dir, 'disk.img');
    fs.writeFileSync(file, content);
  });
  afterEach(() => {
    vi.restoreAllMocks();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reads adjacent requests with one readv per MiB, each buffer getting its own bytes', async () => {
    const store = FileByteStore.open(file, { readOnly: true });
    const readv = vi.spyOn(fs, 'readv');
    const buffers = Array.from({ length: 12 }, () => Buffer.alloc(256 * 1024, 0xee));
    const counts = await Promise.all(buffers.map((buffer, index) => store.preadAsync(buffer, index * buffer.length)));
    expect(counts).toEqual(buffers.map((buffer) => buffer.length));
    buffers.forEach((buffer, index) => expect(buffer.equals(content.subarray(index * buffer.length, (index + 1) * buffer.length))).toBe(true));
    expect(readv).toHaveBeenCalledTimes(3);
    store.close();
  });

  it('reads scattered requests one by one, and a run crossing the end of the file short with zero bytes after it', async () => {
    const store = FileByteStore.open(file, { readOnly: true });
    const readv = vi.spyOn(fs, 'readv');
    const requests: Array<[number, number]> = [[100, 10], [5000, 7], [3 * MIB, 512], [3 * MIB + 512, 1000], [3 * MIB + 1512, 64], [10 * MIB, 8]];
    const buffers = requests.map(([, length]) => Buffer.alloc(length, 0xee));
    const counts = await Promise.all(requests.map(([offset], index) => store.preadAsync(buffers[index]!, offset)));
    expect(counts).toEqual([10, 7, 512, 488, 0, 0]);
    requests.forEach(([offset], index) => expect(buffers[index]!.subarray(0, counts[index]).equals(content.subarray(offset, offset + counts[index]!))).toBe(true));
    expect(readv).toHaveBeenCalledTimes(1);
    store.close();
  });

  it('fails every read of a run the host refuses', async () => {
    const store = FileByteStore.open(file, { readOnly: true });
    vi.spyOn(fs, 'readv').mockImplementation(((_fd: number, _buffers: Buffer[], _position: number, callback: (error: Error | null, bytes: number) => void) =>
      callback(Object.assign(new Error('EIO'), { errno: -5 }), 0)) as unknown as typeof fs.readv);
    const reads = [0, 512].map((offset) => store.preadAsync(Buffer.alloc(512), offset));
    for (const read of reads) await expect(read).rejects.toThrow('EIO');
    store.close();
  });
});
