import fs from 'node:fs';
import path from 'node:path';
import { DaemonProcess } from './daemon.ts';
import { CLUSTER, buildImage, setHeaderField } from './qcow2-images.ts';

/**
 * Hostile qcow2 images QEMU 7.2 opens (the fuzzer's former known
 * divergences and their kin): QEMU checks their tables only when it uses
 * them, and reports an overlap with other metadata, or a table it cannot
 * use, as a BLOCK_IMAGE_CORRUPTED event on first use. Each case: the image
 * (a mutated buildImage(), 64 MiB, version 3 unless it says otherwise), the
 * requests (`@FILE@` is the image's path) and every line QEMU 7.2 answered,
 * events included (timestamps written as `T`).
 */
export interface LazyImageCase {
  name: string;
  /** Fuzz case ids (seed 1) this case stands for. */
  fuzzCases: string[];
  image(): Buffer;
  requests: string[];
  qemuLines: string[];
  /** Why the image qblockd leaves differs from QEMU's, when it does. */
  imageDiffers?: string;
}

const ADD = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ execute: 'blockdev-add', arguments: { driver: 'qcow2', 'node-name': 'h', ...extra, file: { driver: 'file', filename: '@FILE@' } } });
const QEMU_IO = (command: string) => JSON.stringify({ execute: 'human-monitor-command', arguments: { 'command-line': `qemu-io h "${command}"` } });
const BITMAP = JSON.stringify({ execute: 'block-dirty-bitmap-add', arguments: { node: 'h', name: 'p0', persistent: true } });
const DEL = JSON.stringify({ execute: 'blockdev-del', arguments: { 'node-name': 'h' } });
const NODES = JSON.stringify({ execute: 'query-named-block-nodes' });

/** `change` edits the image in place or returns a new one. */
function mutated(change: (image: Buffer) => Buffer | void, options: { version?: 2 | 3 } = {}): () => Buffer {
  return () => {
    const image = buildImage({ version: options.version ?? 3 });
    return change(image) ?? image;
  };
}

/** An L2 table at cluster 5 that no refcount counts: a bitmap table stored at close goes to cluster 4, the directory to 5. */
const UNCOUNTED_L2_TABLE = mutated((image) => {
  const grown = Buffer.concat([image, Buffer.alloc(2 * CLUSTER)]);
  grown.writeBigUInt64BE(BigInt(5 * CLUSTER) | (1n << 63n), 3 * CLUSTER);
  return grown;
});

export const LAZY_IMAGES: LazyImageCase[] = [
  {
    name: 'refcount table over the refcount block and the L1 table',
    fuzzCases: ['1-114', '1-257', '1-1215'],
    image: mutated((image) => setHeaderField(image, 'refcountTableClusters', 9)),
    requests: [ADD(), QEMU_IO('read 0 64k'), QEMU_IO('discard 0 1M'), DEL],
    qemuLines: [
      '{"return": {}}',
      '{"return": ""}',
      '{"return": ""}',
      '{"return": {}}',
    ],
  },
  {
    name: 'refcount table over its refcount block, bitmap stored at close',
    fuzzCases: ['1-521'],
    image: mutated((image) => setHeaderField(image, 'refcountTableClusters', 2)),
    requests: [ADD(), BITMAP, DEL],
    qemuLines: [
      '{"return": {}}',
      '{"return": {}}',
      '{"timestamp": T, "event": "BLOCK_IMAGE_CORRUPTED", "data": {"device": "", "msg": "Preventing invalid write on metadata (overlaps with refcount table)", "offset": 131072, "node-name": "h", "fatal": true, "size": 65536}}',
      '{"return": {}}',
    ],
  },
  {
    name: 'refcount table of 64 clusters, bitmap table written into it',
    fuzzCases: ['1-320'],
    image: mutated((image) => setHeaderField(image, 'refcountTableClusters', 64)),
    requests: [ADD(), QEMU_IO('read 0 64k'), BITMAP, DEL],
    qemuLines: [
      '{"return": {}}',
      '{"return": ""}',
      '{"return": {}}',
      '{"timestamp": T, "event": "BLOCK_IMAGE_CORRUPTED", "data": {"device": "", "msg": "Preventing invalid write on metadata (overlaps with refcount table)", "offset": 262144, "node-name": "h", "fatal": true, "size": 8}}',
      '{"return": {}}',
    ],
  },
  {
    name: 'refcount table at offset 0, version 2',
    fuzzCases: ['1-292'],
    image: mutated((image) => setHeaderField(image, 'refcountTableOffset', 0), { version: 2 }),
    requests: [ADD(), BITMAP, DEL],
    qemuLines: [
      '{"return": {}}',
      '{"error": {"class": "GenericError", "desc": "Can\'t make bitmap \'p0\' persistent in \'h\': Cannot store dirty bitmaps in qcow2 v2 files"}}',
      '{"return": {}}',
    ],
  },
  {
    name: 'refcount table beyond the end of the file',
    fuzzCases: ['1-706', '1-1292', '1-1696'],
    image: mutated((image) => setHeaderField(image, 'refcountTableOffset', 2n ** 40n)),
    requests: [ADD(), QEMU_IO('read 0 64k'), QEMU_IO('write 0 64k'), BITMAP, NODES, DEL],
    qemuLines: [
      '{"return": {}}',
      '{"return": ""}',
      '{"timestamp": T, "event": "BLOCK_IMAGE_CORRUPTED", "data": {"device": "", "msg": "Preventing invalid allocation of L2 table at offset 0", "node-name": "h", "fatal": true}}',
      '{"return": ""}',
      '{"error": {"class": "GenericError", "desc": "Can\'t store persistent bitmaps to h: No medium found"}}',
      '{"error": {"class": "GenericError", "desc": "Block device h is ejected"}}',
      '{"return": {}}',
    ],
  },
  {
    name: 'L1 table at offset 0',
    fuzzCases: ['1-808'],
    image: mutated((image) => setHeaderField(image, 'l1TableOffset', 0)),
    requests: [ADD(), QEMU_IO('write -z 1M 64k'), BITMAP, QEMU_IO('read 0 64k'), NODES, DEL],
    qemuLines: [
      '{"return": {}}',
      '{"timestamp": T, "event": "BLOCK_IMAGE_CORRUPTED", "data": {"device": "", "msg": "Preventing invalid write on metadata (overlaps with qcow2_header)", "offset": 0, "node-name": "h", "fatal": true, "size": 8}}',
      '{"return": ""}',
      '{"error": {"class": "GenericError", "desc": "Can\'t store persistent bitmaps to h: No medium found"}}',
      '{"return": ""}',
      '{"error": {"class": "GenericError", "desc": "Block device h is ejected"}}',
      '{"return": {}}',
    ],
  },
  {
    name: 'L1 table at 2^56',
    fuzzCases: ['1-377', '1-1276'],
    image: mutated((image) => setHeaderField(image, 'l1TableOffset', 2n ** 56n)),
    requests: [ADD(), QEMU_IO('read 0 64k'), QEMU_IO('write -z 1M 64k'), BITMAP, DEL],
    qemuLines: [
      '{"return": {}}',
      '{"return": ""}',
      '{"return": ""}',
      '{"return": {}}',
      '{"return": {}}',
    ],
  },
  {
    name: 'snapshot table offset at 2^56 without snapshots',
    fuzzCases: ['1-1054', '1-1921'],
    image: mutated((image) => setHeaderField(image, 'snapshotsOffset', 2n ** 56n)),
    requests: [ADD(), QEMU_IO('write 0 64k'), BITMAP, DEL],
    qemuLines: [
      '{"return": {}}',
      '{"return": ""}',
      '{"return": {}}',
      '{"return": {}}',
    ],
  },
  {
    name: 'dirty bit',
    fuzzCases: ['1-1125', '1-1498'],
    image: mutated((image) => setHeaderField(image, 'incompatibleFeatures', 1)),
    requests: [ADD(), QEMU_IO('write 0 64k'), BITMAP, DEL],
    qemuLines: [
      '{"return": {}}',
      '{"return": ""}',
      '{"return": {}}',
      '{"return": {}}',
    ],
  },
  {
    name: 'dirty bit with leaked clusters',
    fuzzCases: [],
    image: mutated((image) => {
      setHeaderField(image, 'incompatibleFeatures', 1);
      // An L2 table at cluster 4 and its data at cluster 6; cluster 5 counted though unused, cluster 6 counted twice.
      const grown = Buffer.alloc(7 * CLUSTER);
      image.copy(grown);
      for (const [cluster, count] of [[4, 1], [5, 1], [6, 2]]) grown.writeUInt16BE(count!, 2 * CLUSTER + cluster! * 2);
      grown.writeBigUInt64BE(BigInt(4 * CLUSTER) | (1n << 63n), 3 * CLUSTER);
      grown.writeBigUInt64BE(BigInt(6 * CLUSTER) | (1n << 63n), 4 * CLUSTER);
      grown.fill(0xab, 6 * CLUSTER);
      return grown;
    }),
    requests: [ADD(), QEMU_IO('read -P 0xab 0 64k'), QEMU_IO('write 64k 64k'), DEL],
    qemuLines: [
      '{"return": {}}',
      '{"return": ""}',
      '{"return": ""}',
      '{"return": {}}',
    ],
  },
  {
    name: 'bitmaps autoclear bit without a bitmaps extension',
    fuzzCases: ['1-1576', '1-1721', '1-1879'],
    image: mutated((image) => setHeaderField(image, 'autoclearFeatures', 65537)),
    requests: [ADD(), QEMU_IO('read 0 64k'), BITMAP, DEL],
    qemuLines: [
      '{"return": {}}',
      '{"return": ""}',
      '{"return": {}}',
      '{"timestamp": T, "event": "BLOCK_IMAGE_CORRUPTED", "data": {"device": "", "msg": "Preventing invalid write on metadata (overlaps with bitmap directory)", "offset": 262144, "node-name": "h", "fatal": true, "size": 8}}',
      '{"return": {}}',
    ],
  },
  {
    name: 'bitmaps autoclear bit without a bitmaps extension, guest write',
    fuzzCases: [],
    image: mutated((image) => setHeaderField(image, 'autoclearFeatures', 1)),
    requests: [ADD(), QEMU_IO('write 0 64k'), QEMU_IO('write 0 64k'), NODES, DEL],
    qemuLines: [
      '{"return": {}}',
      '{"timestamp": T, "event": "BLOCK_IMAGE_CORRUPTED", "data": {"device": "", "msg": "Preventing invalid write on metadata (overlaps with bitmap directory)", "offset": 131072, "node-name": "h", "fatal": true, "size": 65536}}',
      '{"return": ""}',
      '{"return": ""}',
      '{"error": {"class": "GenericError", "desc": "Block device h is ejected"}}',
      '{"return": {}}',
    ],
  },
  {
    name: 'every autoclear bit',
    fuzzCases: ['1-1049'],
    image: mutated((image) => setHeaderField(image, 'autoclearFeatures', 2n ** 64n - 1n)),
    requests: [ADD()],
    qemuLines: [
      '{"error": {"class": "GenericError", "desc": "data-file-raw requires a data file"}}',
    ],
  },
  {
    name: 'size 2^64 - 1',
    fuzzCases: ['1-388', '1-464', '1-1934'],
    image: mutated((image) => setHeaderField(image, 'size', 2n ** 64n - 1n)),
    requests: [ADD()],
    qemuLines: [
      '{"error": {"class": "GenericError", "desc": "Could not refresh total sector count: File too large"}}',
    ],
  },
  {
    name: 'an L2 table where the bitmap directory goes at close (QEMU drops its L1 table before storing bitmaps)',
    fuzzCases: [],
    image: UNCOUNTED_L2_TABLE,
    requests: [ADD(), BITMAP, DEL],
    qemuLines: [
      '{"return": {}}',
      '{"return": {}}',
      '{"return": {}}',
    ],
  },
  {
    name: 'the same L2 table hit by a guest write',
    fuzzCases: [],
    image: UNCOUNTED_L2_TABLE,
    requests: [ADD(), QEMU_IO('write 0 64k'), QEMU_IO('write 64k 64k'), DEL],
    imageDiffers: 'the first write updated an L2 entry and a refcount: QEMU held them in its caches and lost them with the node, qblockd had written them',
    qemuLines: [
      '{"return": {}}',
      '{"return": ""}',
      '{"timestamp": T, "event": "BLOCK_IMAGE_CORRUPTED", "data": {"device": "", "msg": "Preventing invalid write on metadata (overlaps with active L2 table)", "offset": 327680, "node-name": "h", "fatal": true, "size": 65536}}',
      '{"return": ""}',
      '{"return": {}}',
    ],
  },
  {
    name: 'dirty bit and an unaligned refcount block: the repair fails',
    fuzzCases: [],
    image: mutated((image) => {
      setHeaderField(image, 'incompatibleFeatures', 1);
      image.writeBigUInt64BE(BigInt(2 * CLUSTER + 512), CLUSTER);
    }),
    requests: [ADD(), DEL],
    qemuLines: [
      '{"timestamp": T, "event": "BLOCK_IMAGE_CORRUPTED", "data": {"device": "", "msg": "Refblock offset 0x20200 unaligned (reftable index: 0)", "node-name": "h", "fatal": true}}',
      '{"error": {"class": "GenericError", "desc": "Could not repair dirty image: Input/output error"}}',
      '{"error": {"class": "GenericError", "desc": "Failed to find node with node-name=\'h\'"}}',
    ],
  },
  {
    name: 'unaligned L2 table offset, read-only then read-write',
    fuzzCases: [],
    image: mutated((image) => {
      image.writeBigUInt64BE(BigInt(4 * CLUSTER + 512) | (1n << 63n), 3 * CLUSTER);
    }),
    requests: [ADD({ 'read-only': true }), QEMU_IO('read 0 64k'), QEMU_IO('read 0 64k'), DEL, ADD(), QEMU_IO('read 0 64k'), QEMU_IO('write 0 64k'), DEL],
    qemuLines: [
      '{"return": {}}',
      '{"timestamp": T, "event": "BLOCK_IMAGE_CORRUPTED", "data": {"device": "", "msg": "L2 table offset 0x40200 unaligned (L1 index: 0)", "node-name": "h", "fatal": false}}',
      '{"return": ""}',
      '{"return": ""}',
      '{"return": {}}',
      '{"return": {}}',
      '{"timestamp": T, "event": "BLOCK_IMAGE_CORRUPTED", "data": {"device": "", "msg": "L2 table offset 0x40200 unaligned (L1 index: 0)", "node-name": "h", "fatal": true}}',
      '{"return": ""}',
      '{"return": ""}',
      '{"return": {}}',
    ],
  },
];

/** Runs one case on a fresh program (qblockd, or QEMU with `program`) and returns every line after negotiation. */
export async function runLazyCase(testCase: LazyImageCase, dir: string, program?: string): Promise<{ lines: string[]; file: string }> {
  const file = path.join(dir, `${testCase.name.replace(/[^a-z0-9]+/gi, '-')}-${program ? 'qemu' : 'qblockd'}.qcow2`);
  fs.writeFileSync(file, testCase.image());
  const daemon = await DaemonProcess.start([], { program });
  try {
    const client = await daemon.client();
    const lines: string[] = [];
    for (const request of testCase.requests) {
      client.send(request.replaceAll('@FILE@', file) + '\n');
      for (;;) {
        const line = (await client.readLine(30_000)).replace(/"timestamp": \{[^}]*\}/, '"timestamp": T').replaceAll(file, '@FILE@');
        lines.push(line);
        if (!line.startsWith('{"timestamp"')) break;
      }
    }
    client.close();
    return { lines, file };
  } finally {
    await daemon.stop();
  }
}
