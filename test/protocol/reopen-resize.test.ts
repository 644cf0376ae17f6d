import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonProcess, type RawClient } from '../support/daemon.ts';
import { buildImage } from '../support/qcow2-images.ts';

const MiB = 1024 * 1024;

interface NodeInfo {
  'node-name': string;
  ro: boolean;
  image: { 'virtual-size': number; 'format-specific'?: { data: { bitmaps?: Array<{ name: string; flags: string[] }> } } };
  'dirty-bitmaps'?: Array<{ name: string; count: number }>;
}

describe('blockdev-reopen and block_resize over a real socket', () => {
  let daemon: DaemonProcess;
  let client: RawClient;
  let image: string;

  async function node(name: string): Promise<NodeInfo> {
    const { return: nodes } = await client.command({ execute: 'query-named-block-nodes' });
    return (nodes as NodeInfo[]).find((info) => info['node-name'] === name)!;
  }

  async function imageBitmapFlags(): Promise<Record<string, string[]>> {
    const bitmaps = (await node('q0')).image['format-specific']?.data.bitmaps ?? [];
    return Object.fromEntries(bitmaps.map((bitmap) => [bitmap.name, bitmap.flags]));
  }

  beforeAll(async () => {
    daemon = await DaemonProcess.start(['-blockdev', 'driver=null-co,node-name=n0']);
    image = path.join(daemon.dir, 'disk.qcow2');
    fs.writeFileSync(image, buildImage({ virtualSize: 64 * MiB }));
    client = await daemon.client();
    for (const args of [
      { driver: 'file', 'node-name': 'f0', filename: image },
      { driver: 'qcow2', 'node-name': 'q0', file: 'f0' },
    ]) {
      expect(await client.command({ execute: 'blockdev-add', arguments: args })).toEqual({ return: {} });
    }
    expect(await client.command({ execute: 'block-dirty-bitmap-add', arguments: { node: 'q0', name: 'b0', persistent: true } })).toEqual({ return: {} });
  });
  afterAll(async () => {
    client.close();
    await daemon.stop();
  });

  it('answers an empty list with an empty return and changes nothing (QEMU 7.2 aborts on an assertion)', async () => {
    expect(await client.exchange('{"execute": "blockdev-reopen", "arguments": {"options": []}}')).toBe('{"return": {}}');
    expect((await node('q0')).ro).toBe(false);
  });

  it('reopening read-only stores the bitmap (in-use cleared) and write-protects it; read-write marks it in use again', async () => {
    const q0 = (extra: object) => ({ execute: 'blockdev-reopen', arguments: { options: [{ driver: 'qcow2', 'node-name': 'q0', file: 'f0', ...extra }] } });
    expect(await client.command(q0({ 'read-only': true }))).toEqual({ return: {} });
    expect(await imageBitmapFlags()).toEqual({ b0: ['auto'] });
    expect(await client.command({ execute: 'block-dirty-bitmap-clear', arguments: { node: 'q0', name: 'b0' } })).toEqual({
      error: { class: 'GenericError', desc: "Bitmap 'b0' is readonly and cannot be modified" },
    });
    expect(await client.command(q0({}))).toEqual({ return: {} });
    expect(await imageBitmapFlags()).toEqual({ b0: ['in-use', 'auto'] });
  });

  it('a refused reopen leaves the bitmaps as they were: writable, recording and in use on disk (QEMU 7.2 stores and write-protects them anyway)', async () => {
    const socket = path.join(daemon.dir, 'nbd.sock');
    expect(await client.command({ execute: 'nbd-server-start', arguments: { addr: { type: 'unix', data: { path: socket } } } })).toEqual({ return: {} });
    expect(await client.command({ execute: 'block-export-add', arguments: { type: 'nbd', id: 'e0', 'node-name': 'q0', writable: true } })).toEqual({
      return: {},
    });
    const reply = await client.exchange(
      '{"execute": "blockdev-reopen", "arguments": {"options": [{"driver": "file", "node-name": "f0", "filename": "' +
        image +
        '", "read-only": true}, {"driver": "qcow2", "node-name": "q0", "file": "f0", "read-only": true}]}}',
    );
    expect(reply).toBe('{"error": {"class": "GenericError", "desc": "Read-only block node \'q0\' cannot support read-write users"}}');
    expect((await node('q0')).ro).toBe(false);
    expect((await node('f0')).ro).toBe(false);
    expect(await imageBitmapFlags()).toEqual({ b0: ['in-use', 'auto'] });
    expect(await client.command({ execute: 'human-monitor-command', arguments: { 'command-line': 'qemu-io q0 "write 0 64k"' } })).toEqual({ return: '' });
    expect((await node('q0'))['dirty-bitmaps']).toMatchObject([{ name: 'b0', count: 65536 }]);
    expect(await client.command({ execute: 'block_resize', arguments: { 'node-name': 'q0', size: 128 * MiB } })).toEqual({
      error: {
        class: 'GenericError',
        desc: "Permission conflict on node 'q0': permissions 'resize' are both required by an unnamed block device (uses node 'q0' as 'root' child) and unshared by an unnamed block device (uses node 'q0' as 'root' child).",
      },
    });
    expect(await client.command({ execute: 'block-export-del', arguments: { id: 'e0' } })).toEqual({ return: {} });
    expect(await client.command({ execute: 'nbd-server-stop' })).toEqual({ return: {} });
  });

  it('block_resize grows the node and its bitmap; the reply is an empty return and no event follows', async () => {
    expect(await client.exchange('{"execute": "block_resize", "arguments": {"node-name": "q0", "size": 134217728}}')).toBe('{"return": {}}');
    expect(await client.exchange('{"execute": "block_resize", "arguments": {"node-name": "q0", "size": -1}}')).toBe(
      '{"error": {"class": "GenericError", "desc": "Parameter \'size\' expects a >0 size"}}',
    );
    const q0 = await node('q0');
    expect(q0.image['virtual-size']).toBe(128 * MiB);
    expect(q0['dirty-bitmaps']).toMatchObject([{ name: 'b0', count: 65536 }]);
    expect(await client.command({ execute: 'human-monitor-command', arguments: { 'command-line': 'qemu-io q0 "write 127M 1M"' } })).toEqual({ return: '' });
    expect((await node('q0'))['dirty-bitmaps']).toMatchObject([{ name: 'b0', count: 65536 + MiB }]);
  });
});
