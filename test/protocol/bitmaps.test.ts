import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonProcess, type RawClient } from '../support/daemon.ts';

// Replies pinned to QEMU 7.2.22 (qemu-system-x86_64 -M none) for the same command sequence.

describe('bitmap commands over a real socket', () => {
  let daemon: DaemonProcess;
  let client: RawClient;
  beforeAll(async () => {
    daemon = await DaemonProcess.start([
      '-blockdev', 'driver=null-co,node-name=n0,size=1073741824',
      '-blockdev', 'driver=null-co,node-name=n1,size=2147483648',
    ]);
    const image = path.join(daemon.dir, 'e.img');
    fs.writeFileSync(image, Buffer.alloc(0));
    fs.truncateSync(image, 1 << 20);
    client = await daemon.client();
    for (const args of [
      { driver: 'file', 'node-name': 'f0', filename: image },
      { driver: 'raw', 'node-name': 'r0', file: 'f0' },
    ]) {
      expect(await client.command({ execute: 'blockdev-add', arguments: args })).toEqual({ return: {} });
    }
  });
  afterAll(async () => {
    client.close();
    await daemon.stop();
  });

  const sequence: Array<[Record<string, unknown>, string]> = [
    [{ execute: 'block-dirty-bitmap-add', arguments: { node: 'nx', name: 'b1' } }, "Cannot find device='nx' nor node-name='nx'"],
    [{ execute: 'block-dirty-bitmap-add', arguments: { node: 'nx', name: '' } }, 'Bitmap name cannot be empty'],
    [{ execute: 'block-dirty-bitmap-add', arguments: { node: 'n0', name: 'b1', granularity: 256 } }, 'Granularity must be power of 2 and at least 512'],
    [{ execute: 'block-dirty-bitmap-add', arguments: { node: 'n0', name: 'b1', granularity: 4294967295 } }, 'Granularity must be power of 2 and at least 512'],
    [{ execute: 'block-dirty-bitmap-add', arguments: { node: 'n0', name: 'b1', persistent: true } }, "Can't store persistent bitmaps to n0: Operation not supported"],
    [{ execute: 'block-dirty-bitmap-add', arguments: { node: 'r0', name: 'b1', persistent: true } }, "Can't store persistent bitmaps to r0: Operation not supported"],
    [{ execute: 'block-dirty-bitmap-add', arguments: { node: 'n0', name: 'b1', granularity: 2147483648 } }, ''],
    [{ execute: 'block-dirty-bitmap-add', arguments: { node: 'n0', name: 'b1' } }, 'Bitmap already exists: b1'],
    [{ execute: 'block-dirty-bitmap-add', arguments: { node: 'n1', name: 'b1' } }, ''],
    [{ execute: 'block-dirty-bitmap-remove', arguments: { node: 'nx', name: 'b1' } }, "Node 'nx' not found"],
    [{ execute: 'block-dirty-bitmap-remove', arguments: { node: 'n0', name: 'zz' } }, "Dirty bitmap 'zz' not found"],
    [{ execute: 'block-dirty-bitmap-clear', arguments: { node: 'nx', name: 'b1' } }, "Node 'nx' not found"],
    [{ execute: 'block-dirty-bitmap-clear', arguments: { node: 'n0', name: 'zz' } }, "Dirty bitmap 'zz' not found"],
    [{ execute: 'block-dirty-bitmap-enable', arguments: { node: 'n0', name: 'zz' } }, "Dirty bitmap 'zz' not found"],
    [{ execute: 'x-debug-block-dirty-bitmap-sha256', arguments: { node: 'nx', name: 'zz' } }, "Node 'nx' not found"],
    [{ execute: 'x-debug-block-dirty-bitmap-sha256', arguments: { node: 'n0', name: 'zz' } }, "Dirty bitmap 'zz' not found"],
    [{ execute: 'block-dirty-bitmap-merge', arguments: { node: 'nx', target: 'zz', bitmaps: ['b1'] } }, "Node 'nx' not found"],
    [{ execute: 'block-dirty-bitmap-merge', arguments: { node: 'n0', target: 'zz', bitmaps: ['b1'] } }, "Dirty bitmap 'zz' not found"],
    [{ execute: 'block-dirty-bitmap-merge', arguments: { node: 'n0', target: 'b1', bitmaps: ['zz'] } }, "Dirty bitmap 'zz' not found"],
    [{ execute: 'block-dirty-bitmap-merge', arguments: { node: 'n0', target: 'b1', bitmaps: [{ node: 'nx', name: 'b1' }] } }, "Node 'nx' not found"],
    [{ execute: 'block-dirty-bitmap-merge', arguments: { node: 'n0', target: 'b1', bitmaps: [{ node: 'n1', name: 'zz' }] } }, "Dirty bitmap 'zz' not found"],
    [
      { execute: 'block-dirty-bitmap-merge', arguments: { node: 'n0', target: 'b1', bitmaps: [{ node: 'n1', name: 'b1' }] } },
      "Bitmaps are of different sizes (destination size is 1073741824, source size is 2147483648) and can't be merged",
    ],
    [{ execute: 'block-dirty-bitmap-merge', arguments: { node: 'n0', target: 'b1', bitmaps: ['b1'] } }, ''],
    // QEMU 7.2 crashes here; later QEMU (and qblockd) accept an empty list and change nothing.
    [{ execute: 'block-dirty-bitmap-merge', arguments: { node: 'n0', target: 'b1', bitmaps: [] } }, ''],
    [{ execute: 'block-dirty-bitmap-disable', arguments: { node: 'n0', name: 'b1' } }, ''],
    [{ execute: 'block-dirty-bitmap-disable', arguments: { node: 'n0', name: 'b1' } }, ''],
    [{ execute: 'block-dirty-bitmap-enable', arguments: { node: 'n0', name: 'b1' } }, ''],
    // QEMU 7.2 aborts here too; qblockd refuses with the text QEMU uses for actions without grouped support.
    [
      {
        execute: 'transaction',
        arguments: { actions: [{ type: 'block-dirty-bitmap-enable', data: { node: 'n0', name: 'b1' } }], properties: { 'completion-mode': 'grouped' } },
      },
      "Action 'block-dirty-bitmap-enable' does not support Transaction property completion-mode = grouped",
    ],
  ];

  it('answers the oracle sequence in order', async () => {
    for (const [request, expectedError] of sequence) {
      const reply = await client.command(request);
      if (expectedError === '') expect(reply, JSON.stringify(request)).toEqual({ return: {} });
      else expect(reply, JSON.stringify(request)).toEqual({ error: { class: 'GenericError', desc: expectedError } });
    }
  });

  it('lists bitmaps newest first in query-named-block-nodes, with node order newest first', async () => {
    await client.command({ execute: 'block-dirty-bitmap-add', arguments: { node: 'n0', name: 'b2', disabled: true } });
    const reply = await client.command({ execute: 'query-named-block-nodes' });
    expect(reply.return.map((node: any) => node['node-name'])).toEqual(['r0', 'f0', 'n1', 'n0']);
    const n0 = reply.return.find((node: any) => node['node-name'] === 'n0');
    expect(n0['dirty-bitmaps']).toEqual([
      { name: 'b2', recording: false, persistent: false, busy: false, granularity: 65536, count: 0 },
      { name: 'b1', recording: true, persistent: false, busy: false, granularity: 2147483648, count: 0 },
    ]);
    expect(n0.image).toEqual({
      'virtual-size': 1073741824,
      filename: 'json:{"driver": "null-co", "size": 1073741824}',
      format: 'null-co',
      'actual-size': 0,
    });
  });

  it('marks bitmaps on write and write -z, not on discard, down to the protocol node', async () => {
    for (const node of ['n0', 'f0', 'r0']) {
      await client.command({ execute: 'block-dirty-bitmap-add', arguments: { node, name: 'w' } });
    }
    const io = (line: string) => client.command({ execute: 'human-monitor-command', arguments: { 'command-line': line } });
    expect(await io('qemu-io n0 "discard 0 1M"')).toEqual({ return: '' });
    expect(await io('qemu-io r0 "discard 0 1M"')).toEqual({ return: '' });
    expect(await io('qemu-io n0 "write -z 0 512k"')).toEqual({ return: '' });
    expect(await io('qemu-io r0 "write 64k 4k"')).toEqual({ return: '' });
    const nodes = (await client.command({ execute: 'query-named-block-nodes' })).return;
    const count = (name: string) =>
      nodes.find((node: any) => node['node-name'] === name)['dirty-bitmaps'].find((b: any) => b.name === 'w').count;
    expect([count('n0'), count('r0'), count('f0')]).toEqual([524288, 65536, 65536]);
  });
});

// QEMU 7.2 runs the abort of the failed action too: a transaction whose block-dirty-bitmap-enable
// fails its permission check leaves that bitmap disabled (`recording: false`, observed), and one
// whose enable names a missing bitmap crashes QEMU (SIGSEGV, observed). qblockd keeps a failed
// transaction's promise instead: nothing changes (README, "Differences from QEMU 7.2").
describe('a transaction whose block-dirty-bitmap-enable fails', () => {
  let daemon: DaemonProcess;
  let client: RawClient;
  const busy = "Bitmap 't' is currently in use by another operation and cannot be used";
  const recording = async () => {
    const nodes = (await client.command({ execute: 'query-named-block-nodes' })).return;
    const bitmaps = nodes.find((node: any) => node['node-name'] === 'n0')['dirty-bitmaps'];
    return Object.fromEntries(bitmaps.map((bitmap: any) => [bitmap.name, bitmap.recording]));
  };
  const enableIn = (actions: Array<Record<string, unknown>>) => client.command({ execute: 'transaction', arguments: { actions } });
  const action = (type: string, name: string) => ({ type, data: { node: 'n0', name } });

  beforeAll(async () => {
    daemon = await DaemonProcess.start(['-blockdev', 'driver=null-co,node-name=n0,size=1048576']);
    client = await daemon.client();
    for (const request of [
      { execute: 'block-dirty-bitmap-add', arguments: { node: 'n0', name: 'b0' } },
      { execute: 'block-dirty-bitmap-add', arguments: { node: 'n0', name: 't' } },
      { execute: 'block-dirty-bitmap-add', arguments: { node: 'n0', name: 'off', disabled: true } },
      { execute: 'nbd-server-start', arguments: { addr: { type: 'unix', data: { path: path.join(daemon.dir, 'nbd.sock') } } } },
      { execute: 'block-export-add', arguments: { type: 'nbd', id: 'e0', 'node-name': 'n0', writable: true, bitmaps: ['t', 'off'] } },
    ]) {
      expect(await client.command(request)).toEqual({ return: {} });
    }
  });
  afterAll(async () => {
    client.close();
    await daemon.stop();
  });

  it("answers QEMU's error and leaves the busy bitmap recording (QEMU 7.2 disables it)", async () => {
    expect(await enableIn([action('block-dirty-bitmap-enable', 't')])).toEqual({ error: { class: 'GenericError', desc: busy } });
    expect(await enableIn([action('block-dirty-bitmap-disable', 'b0'), action('block-dirty-bitmap-enable', 't')])).toEqual({
      error: { class: 'GenericError', desc: busy },
    });
    expect(await recording()).toEqual({ b0: true, t: true, off: false });
  });

  it('leaves a disabled busy bitmap disabled, as QEMU does', async () => {
    expect(await enableIn([action('block-dirty-bitmap-enable', 'off')])).toEqual({
      error: { class: 'GenericError', desc: "Bitmap 'off' is currently in use by another operation and cannot be used" },
    });
    expect(await recording()).toEqual({ b0: true, t: true, off: false });
  });

  it('answers an enable of a missing bitmap where QEMU 7.2 crashes, and changes nothing', async () => {
    expect(await enableIn([action('block-dirty-bitmap-disable', 'b0'), action('block-dirty-bitmap-enable', 'nosuch')])).toEqual({
      error: { class: 'GenericError', desc: "Dirty bitmap 'nosuch' not found" },
    });
    expect(await recording()).toEqual({ b0: true, t: true, off: false });
  });
});
