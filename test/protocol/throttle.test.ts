import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonProcess, type RawClient } from '../support/daemon.ts';
import { CMD, NbdWire, OPT, infoPayload } from '../support/nbd-client.ts';

// Replies pinned to QEMU 7.2 (qemu-system-x86_64 -M none) for the same commands.

describe('throttle groups, the throttle filter and cbw-timeout over a real socket', () => {
  let daemon: DaemonProcess;
  let client: RawClient;
  beforeAll(async () => {
    daemon = await DaemonProcess.start();
    client = await daemon.client();
  });
  afterAll(async () => {
    client.close();
    await daemon.stop();
  });

  const ask = (execute: string, args: Record<string, unknown>) => client.command({ execute, arguments: args });

  it("adds and deletes throttle-group objects with QEMU's refusals", async () => {
    expect(await ask('object-add', { 'qom-type': 'throttle-group', id: 'g0', limits: { 'bps-write': 1024 } })).toEqual({ return: {} });
    expect(await ask('object-add', { 'qom-type': 'throttle-group', id: 'g0' })).toEqual({
      error: { class: 'GenericError', desc: "attempt to add duplicate property 'g0' to object (type 'container')" },
    });
    // QEMU builds secrets; qblockd refuses every type but throttle-group with QEMU's text for a type it does not know.
    expect(await ask('object-add', { 'qom-type': 'secret', id: 's0' })).toEqual({ error: { class: 'GenericError', desc: 'invalid object type: secret' } });
    expect(await ask('blockdev-add', { driver: 'throttle', 'node-name': 't0', 'throttle-group': 'g0', file: { driver: 'null-co' } })).toEqual({ return: {} });
    expect(await ask('object-del', { id: 'g0' })).toEqual({ error: { class: 'GenericError', desc: "object 'g0' is in use, can not be deleted" } });
    expect(await ask('blockdev-del', { 'node-name': 't0' })).toEqual({ return: {} });
    expect(await ask('object-del', { id: 'g0' })).toEqual({ return: {} });
    expect(await ask('object-del', { id: 'g0' })).toEqual({ error: { class: 'GenericError', desc: "object 'g0' not found" } });
  });

  // 64 KiB/s: the first write goes at once, the next ones are answered only when due, in order.
  it('answers NBD writes through a throttle node in order once due, and they land', async () => {
    const image = path.join(daemon.dir, 'throttled.img');
    fs.writeFileSync(image, Buffer.alloc(1048576));
    expect(await ask('object-add', { 'qom-type': 'throttle-group', id: 'nbd-group', limits: { 'bps-write': 65536 } })).toEqual({ return: {} });
    expect(await ask('blockdev-add', { driver: 'throttle', 'node-name': 'nbd-t', 'throttle-group': 'nbd-group', file: { driver: 'file', filename: image } })).toEqual({ return: {} });
    const socket = path.join(daemon.dir, 'throttle-nbd.sock');
    expect(await ask('nbd-server-start', { addr: { type: 'unix', data: { path: socket } } })).toEqual({ return: {} });
    expect(await ask('block-export-add', { type: 'nbd', id: 'nbd-e', 'node-name': 'nbd-t', writable: true })).toEqual({ return: {} });
    const { wire } = await NbdWire.handshake(socket);
    wire.option(OPT.GO, infoPayload('nbd-t'));
    expect((await wire.optionReplies()).at(-1)!.type).toBe(1);
    const writes = [0x11, 0x22, 0x33].map((byte, index) => ({ handle: index + 1, offset: index * 16384, payload: Buffer.alloc(16384, byte) }));
    for (const write of writes) wire.request(CMD.WRITE, write.offset, write.payload.length, { handle: write.handle, payload: write.payload });
    wire.request(CMD.READ, 0, 3 * 16384, { handle: 9 });
    for (const write of writes) expect(await wire.simpleReply()).toMatchObject({ handle: write.handle.toString(16).padStart(16, '0'), error: 0 });
    expect(await wire.simpleReply(3 * 16384)).toEqual({
      kind: 'simple', error: 0, handle: '0000000000000009', payload: Buffer.concat(writes.map((write) => write.payload)).toString('hex'),
    });
    wire.close();
    expect(await ask('nbd-server-stop', {})).toEqual({ return: {} });
  });

  // At 1 KiB/s the second copy would take minutes: the 1 s timeout fires however loaded the machine is.
  it('times a slow copy out: break-guest-write keeps the source, break-snapshot writes it', async () => {
    const dirty = async (onCbwError: string) => {
      const id = `group-${onCbwError}`;
      expect(await ask('object-add', { 'qom-type': 'throttle-group', id, limits: { 'bps-write': 1024 } })).toEqual({ return: {} });
      const sourceNode = `src-${onCbwError}`;
      await ask('blockdev-add', { driver: 'null-co', 'node-name': sourceNode, size: 1048576 });
      await ask('block-dirty-bitmap-add', { node: sourceNode, name: 'writes' });
      expect(
        await ask('blockdev-add', {
          driver: 'copy-before-write', 'node-name': `cbw-${onCbwError}`, 'on-cbw-error': onCbwError, 'cbw-timeout': 1, file: sourceNode,
          target: { driver: 'throttle', 'throttle-group': id, file: { driver: 'null-co', size: 1048576 } },
        }),
      ).toEqual({ return: {} });
      for (const offset of ['0', '64k']) {
        expect(await ask('human-monitor-command', { 'command-line': `qemu-io cbw-${onCbwError} "write ${offset} 64k"` })).toEqual({ return: '' });
      }
      return (await ask('x-debug-block-dirty-bitmap-sha256', { node: sourceNode, name: 'writes' })).return;
    };
    // The first 64 KiB only, then both: QEMU 7.2's hashes for the same sequence.
    expect(await dirty('break-guest-write')).toEqual({ sha256: '7c9fa136d4413fa6173637e883b6998d32e1d675f88cddff9dcbcf331820f4b8' });
    expect(await dirty('break-snapshot')).toEqual({ sha256: '35be322d094f9d154a8aba4733b8497f180353bd7ae7b0a15f90b586b549f28b' });
  });
});
