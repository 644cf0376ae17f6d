import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultQcow2Image } from '../../src/block/drivers/qcow2/create.ts';
import { DaemonProcess, type RawClient } from '../support/daemon.ts';
import { CMD, NbdWire, OPT } from '../support/nbd-client.ts';
import { describeInterop, qemuImg, qemuImgCheck } from '../support/qemu.ts';

// Replies pinned to QEMU 7.2 (iotests 080 and 081 hold the same sequences with golden files QEMU wrote).

const MIB = 1 << 20;

async function qemuIo(client: RawClient, device: string, command: string): Promise<unknown> {
  return client.command({ execute: 'human-monitor-command', arguments: { 'command-line': `qemu-io ${device} "${command}"` } });
}

/**
 * The bytes qblockd serves for [offset, offset+length) of an export: HMP qemu-io's pattern
 * checks print on the daemon's stdout, not in the reply, so reads are checked over NBD.
 */
async function nbdRead(socket: string, name: string, offset: number, length: number): Promise<Buffer> {
  const { wire } = await NbdWire.handshake(socket);
  wire.option(OPT.EXPORT_NAME, Buffer.from(name));
  await wire.read(10);
  wire.request(CMD.READ, offset, length);
  const reply = await wire.simpleReply(length);
  wire.close();
  expect(reply.error).toBe(0);
  return Buffer.from(reply.payload, 'hex');
}

/** Images outlive the daemons that write them: a directory of their own. */
function imageDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-snapshot-'));
}

describe('backing chains and snapshots over a real socket', () => {
  const daemons: DaemonProcess[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    for (const daemon of daemons.splice(0)) await daemon.stop();
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function start(args: string[]): Promise<{ daemon: DaemonProcess; client: RawClient }> {
    const daemon = await DaemonProcess.start(args);
    daemons.push(daemon);
    return { daemon, client: await daemon.client() };
  }

  it('snapshots a device onto a new overlay that reads through, and the image opens again as a chain', async () => {
    const dir = imageDir();
    dirs.push(dir);
    const base = path.join(dir, 'base.qcow2');
    const overlay = path.join(dir, 'overlay.qcow2');
    fs.writeFileSync(base, defaultQcow2Image(BigInt(4 * MIB)));

    const { daemon, client } = await start(['-drive', `if=none,id=d0,file=${base}`]);
    const baseNode = (await client.command({ execute: 'query-block' })).return[0].inserted['node-name'];
    expect(await client.command({ execute: 'block-dirty-bitmap-add', arguments: { node: baseNode, name: 'b0' } })).toEqual({ return: {} });
    expect(await qemuIo(client, 'd0', 'write -P 0x5a 0 1M')).toEqual({ return: '' });
    expect(await client.command({ execute: 'blockdev-snapshot-sync', arguments: { device: 'd0', 'snapshot-file': overlay } })).toEqual({ return: {} });

    const [device] = (await client.command({ execute: 'query-block' })).return;
    expect(device.inserted).toMatchObject({ file: overlay, backing_file: base, backing_file_depth: 1, ro: false });
    expect(device.inserted.image).toMatchObject({ 'backing-filename': base, 'full-backing-filename': base, 'backing-filename-format': 'qcow2' });
    expect(device.inserted.image['backing-image']).toMatchObject({ filename: base, format: 'qcow2' });

    expect(await qemuIo(client, 'd0', 'write -P 0x6b 512k 4k')).toEqual({ return: '' });
    const nbd = path.join(daemon.dir, 'nbd.sock');
    expect(await client.command({ execute: 'nbd-server-start', arguments: { addr: { type: 'unix', data: { path: nbd } } } })).toEqual({ return: {} });
    const exportArgs = { type: 'nbd', id: 'e0', 'node-name': device.inserted['node-name'], name: 'top' };
    expect(await client.command({ execute: 'block-export-add', arguments: exportArgs })).toEqual({ return: {} });
    const served = await nbdRead(nbd, 'top', 0, 2 * MIB);
    expect(served.subarray(0, 512 * 1024).every((byte) => byte === 0x5a)).toBe(true);
    expect(served.subarray(512 * 1024, 516 * 1024).every((byte) => byte === 0x6b)).toBe(true);
    expect(served.subarray(516 * 1024, MIB).every((byte) => byte === 0x5a)).toBe(true);
    expect(served.subarray(MIB).every((byte) => byte === 0)).toBe(true);
    expect(await qemuIo(client, baseNode, 'write 0 4k')).toEqual({ return: 'Block node is read-only\r\n' });
    expect(await client.command({ execute: 'blockdev-snapshot-sync', arguments: { 'node-name': baseNode, 'snapshot-file': overlay, 'snapshot-node-name': 's1' } })).toEqual({
      error: { class: 'GenericError', desc: `Node '${baseNode}' is busy: node is used as backing hd of '${device.inserted['node-name']}'` },
    });

    // Checkpoint as libvirt takes it: a new bitmap on the overlay from the old node's.
    const overlayNode = device.inserted['node-name'];
    expect(await client.command({ execute: 'block-dirty-bitmap-add', arguments: { node: overlayNode, name: 'c1' } })).toEqual({ return: {} });
    expect(await qemuIo(client, 'd0', 'write 3M 64k')).toEqual({ return: '' });
    const merge = { node: overlayNode, target: 'c1', bitmaps: [{ node: baseNode, name: 'b0' }, 'c1'] };
    expect(await client.command({ execute: 'block-dirty-bitmap-merge', arguments: merge })).toEqual({ return: {} });
    const nodes = (await client.command({ execute: 'query-named-block-nodes' })).return;
    const bitmapsOf = (name: string) => nodes.find((node: { 'node-name': string }) => node['node-name'] === name)['dirty-bitmaps'];
    expect(bitmapsOf(overlayNode)).toEqual([{ name: 'c1', recording: true, persistent: false, busy: false, granularity: 65536, count: 1114112 }]);
    expect(bitmapsOf(baseNode)).toEqual([{ name: 'b0', recording: true, persistent: false, busy: false, granularity: 65536, count: 1048576 }]);
    // The web view's graph has the backing node among the overlay's children.
    const view = (await client.command({ execute: 'x-qblockd-query-graph' })).return;
    expect(view.find((node: { 'node-name': string }) => node['node-name'] === overlayNode).children).toEqual([expect.any(String), baseNode]);
    await client.command({ execute: 'quit' });
    await daemon.exited();

    const again = await start(['-blockdev', `driver=file,node-name=f0,filename=${overlay}`, '-blockdev', 'driver=qcow2,node-name=top,file=f0']);
    const againNbd = path.join(again.daemon.dir, 'nbd.sock');
    await again.client.command({ execute: 'nbd-server-start', arguments: { addr: { type: 'unix', data: { path: againNbd } } } });
    await again.client.command({ execute: 'block-export-add', arguments: { type: 'nbd', id: 'e0', 'node-name': 'top' } });
    expect((await nbdRead(againNbd, 'top', 0, 2 * MIB)).equals(served)).toBe(true);
    const top = (await again.client.command({ execute: 'query-named-block-nodes' })).return.find((node: { 'node-name': string }) => node['node-name'] === 'top');
    expect(top).toMatchObject({ file: overlay, backing_file: base, backing_file_depth: 1 });
  });

  it('refuses overlays as QEMU does', async () => {
    const { daemon, client } = await start(['-blockdev', 'driver=null-co,node-name=n0,size=4194304']);
    const image = path.join(daemon.dir, 'ov.qcow2');
    fs.writeFileSync(image, defaultQcow2Image(BigInt(4 * MIB), { file: '/nonexistent/base.qcow2', format: 'qcow2' }));
    expect(await client.command({ execute: 'blockdev-add', arguments: { driver: 'qcow2', 'node-name': 'o0', file: { driver: 'file', filename: image } } })).toEqual({
      error: { class: 'GenericError', desc: "Could not open backing file: Could not open '/nonexistent/base.qcow2': No such file or directory" },
    });
    const add = { driver: 'qcow2', 'node-name': 'ov', file: { driver: 'file', filename: image }, backing: null };
    expect(await client.command({ execute: 'blockdev-add', arguments: add })).toEqual({ return: {} });
    const refusals: Array<[Record<string, unknown>, string]> = [
      [{ node: 'n0', overlay: 'n0' }, 'The overlay does not support backing images'],
      [{ node: 'nx', overlay: 'ov' }, "Cannot find device='nx' nor node-name='nx'"],
      [{ node: 'n0', overlay: 'nx' }, "Cannot find device='nx' nor node-name='nx'"],
    ];
    for (const [args, desc] of refusals) {
      expect(await client.command({ execute: 'blockdev-snapshot', arguments: args })).toEqual({ error: { class: 'GenericError', desc } });
    }
    expect(await client.command({ execute: 'blockdev-snapshot', arguments: { node: 'n0', overlay: 'ov' } })).toEqual({ return: {} });
    expect(await client.command({ execute: 'blockdev-snapshot', arguments: { node: 'ov', overlay: 'ov' } })).toEqual({
      error: { class: 'GenericError', desc: 'The overlay already has a backing image' },
    });
    expect(await client.command({ execute: 'blockdev-del', arguments: { 'node-name': 'n0' } })).toEqual({
      error: { class: 'GenericError', desc: "Node 'n0' is busy: node is used as backing hd of 'ov'" },
    });
    const grouped = { actions: [{ type: 'blockdev-snapshot', data: { node: 'ov', overlay: 'n0' } }], properties: { 'completion-mode': 'grouped' } };
    expect(await client.command({ execute: 'transaction', arguments: grouped })).toEqual({
      error: { class: 'GenericError', desc: "Action 'blockdev-snapshot' does not support Transaction property completion-mode = grouped" },
    });
  });
});

describeInterop('images a snapshot writes, judged by qemu-img', { qemuImg: true }, () => {
  it('creates an overlay qemu-img reads as naming its backing, and finds clean', async () => {
    const dir = imageDir();
    try {
      const base = path.join(dir, 'base.qcow2');
      const overlay = path.join(dir, 'overlay.qcow2');
      qemuImg('create', '-f', 'qcow2', base, '4M');
      const second = await DaemonProcess.start(['-drive', `if=none,id=d0,file=${base}`]);
      try {
        const client = await second.client();
        expect(await client.command({ execute: 'blockdev-snapshot-sync', arguments: { device: 'd0', 'snapshot-file': overlay } })).toEqual({ return: {} });
        expect(await qemuIo(client, 'd0', 'write -P 0x6b 0 70k')).toEqual({ return: '' });
        await client.command({ execute: 'quit' });
        await second.exited();
        const info = JSON.parse(qemuImg('info', '--output=json', overlay));
        expect(info).toMatchObject({ 'backing-filename': base, 'full-backing-filename': base, 'backing-filename-format': 'qcow2' });
        expect(qemuImgCheck(overlay)).toEqual({ corruptions: 0, leaks: 0, status: 0 });
        expect(qemuImgCheck(base)).toEqual({ corruptions: 0, leaks: 0, status: 0 });
      } finally {
        await second.stop();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
