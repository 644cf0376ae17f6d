import type { ByteStore } from '../byte-store.ts';
import { parseDirectory } from './bitmap-directory.ts';
import { AUTOCLEAR_BITMAPS, Qcow2FormatError, readBitmapsExtension, type Qcow2Header } from './header.ts';
import type { RefcountManager } from './refcounts.ts';

const OFFSET_MASK = 0x00fffffffffffe00n;
const COMPRESSED = 1n << 62n;

/**
 * What QEMU does when it opens a dirty image read-write (`qemu-img check -r
 * all` of the refcounts): counts every reference the metadata makes and sets
 * each stored refcount to that count, so leaks and missing references both go.
 * Work is bounded by the file: each distinct L2 table is read once.
 */
export function repairRefcounts(store: ByteStore, header: Qcow2Header, l1: readonly bigint[], refcounts: RefcountManager): void {
  if (header.nbSnapshots > 0) throw new Qcow2FormatError('qcow2: repairing a dirty image with internal snapshots is not supported by qblockd');
  const clusterSize = 2 ** header.clusterBits;
  const references = new Map<number, number>();
  const refer = (offset: number, bytes: number, times = 1) => {
    const first = Math.floor(offset / clusterSize);
    const end = Math.ceil((offset + bytes) / clusterSize);
    for (let cluster = first; cluster < end; cluster++) references.set(cluster, (references.get(cluster) ?? 0) + times);
  };
  // Only what lies in the file is read: past its end a table holds zeroes, which refer to nothing.
  const read = (offset: number, length: number) => {
    const buffer = Buffer.alloc(Math.max(0, Math.min(length, store.size() - offset)));
    store.pread(buffer, offset);
    return buffer;
  };

  refer(0, clusterSize);
  refer(header.l1TableOffset, header.l1Size * 8);
  const l2Users = new Map<number, number>();
  for (const entry of l1) {
    const offset = Number(entry & OFFSET_MASK);
    if (offset) l2Users.set(offset, (l2Users.get(offset) ?? 0) + 1);
  }
  for (const [l2Offset, users] of l2Users) {
    refer(l2Offset, clusterSize, users);
    const table = read(l2Offset, clusterSize);
    for (let at = 0; at < table.length; at += 8) {
      const entry = table.readBigUInt64BE(at);
      if (entry & COMPRESSED) {
        const offsetBits = BigInt(62 - (header.clusterBits - 8));
        const host = Number(entry & ((1n << offsetBits) - 1n));
        const sectors = Number((entry >> offsetBits) & ((1n << BigInt(header.clusterBits - 8)) - 1n)) + 1;
        refer(host, sectors * 512 - (host % 512), users);
        continue;
      }
      const host = Number(entry & OFFSET_MASK);
      if (host) refer(host, clusterSize, users);
    }
  }
  refer(header.refcountTableOffset, header.refcountTableClusters * clusterSize);
  for (const block of refcounts.blockOffsets()) if (block) refer(block, clusterSize);
  const bitmaps = readBitmapsExtension(header);
  if (bitmaps && header.autoclearFeatures & AUTOCLEAR_BITMAPS) {
    refer(bitmaps.directoryOffset, bitmaps.directorySize);
    const directory = Buffer.alloc(bitmaps.directorySize);
    store.pread(directory, bitmaps.directoryOffset);
    for (const entry of parseDirectory(directory, bitmaps.nbBitmaps)) {
      refer(entry.tableOffset, entry.tableSize * 8);
      const table = read(entry.tableOffset, entry.tableSize * 8);
      for (let at = 0; at < table.length; at += 8) {
        const host = Number(table.readBigUInt64BE(at) & OFFSET_MASK);
        if (host) refer(host, clusterSize);
      }
    }
  }

  const fix = (cluster: number) => {
    const wanted = references.get(cluster) ?? 0;
    if (refcounts.get(cluster) === wanted) return;
    if (!refcounts.setCount(cluster, wanted)) {
      throw new Qcow2FormatError('Could not repair dirty image: qblockd cannot rebuild missing refcount blocks (qemu-img check -r all can)');
    }
  };
  const fileClusters = Math.ceil(store.size() / clusterSize);
  for (let cluster = 0; cluster < fileClusters; cluster++) fix(cluster);
  for (const cluster of references.keys()) if (cluster >= fileClusters) fix(cluster);
}
