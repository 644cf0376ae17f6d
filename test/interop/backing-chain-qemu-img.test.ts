import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { DaemonProcess } from '../support/daemon.ts';
import { describeInterop, qemuImg } from '../support/qemu.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-chain-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The ImageInfo members qemu-img info and query-named-block-nodes both report, less what depends on the file system. */
const SHARED = ['filename', 'format', 'virtual-size', 'cluster-size', 'backing-filename', 'full-backing-filename', 'backing-filename-format', 'dirty-flag'];

function shared(info: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(SHARED.filter((key) => key in info).map((key) => [key, info[key]]));
}

describeInterop('a backing chain as qemu-img info --backing-chain sees it', { qemuImg: true }, () => {
  it('nests the same images, in the same order, with the same backing names, as qemu-img lists them', async () => {
    const base = path.join(dir, 'base.raw');
    const mid = path.join(dir, 'mid.qcow2');
    const top = path.join(dir, 'top.qcow2');
    qemuImg('create', '-q', '-f', 'raw', base, '8M');
    qemuImg('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', '-b', 'base.raw', '-F', 'raw', mid);
    qemuImg('create', '-q', '-f', 'qcow2', '-b', mid, '-F', 'qcow2', top);
    const chain: Array<Record<string, unknown>> = JSON.parse(qemuImg('info', '--backing-chain', '--output=json', top));

    const daemon = await DaemonProcess.start(['-blockdev', `driver=file,node-name=f0,filename=${top}`, '-blockdev', 'driver=qcow2,node-name=top,file=f0']);
    try {
      const client = await daemon.client();
      const nodes = (await client.command({ execute: 'query-named-block-nodes' })).return;
      const topInfo = nodes.find((node: { 'node-name': string }) => node['node-name'] === 'top');
      const nested: Array<Record<string, unknown>> = [];
      for (let image = topInfo.image; image; image = image['backing-image']) nested.push(shared(image));
      expect(nested).toEqual(chain.map(shared));
      expect(topInfo.backing_file_depth).toBe(chain.length - 1);
      expect(topInfo.backing_file).toBe(chain[1]!.filename);
    } finally {
      await daemon.stop();
    }
  });
});
