import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { DaemonProcess, type RawClient } from '../support/daemon.ts';
import { describeInterop, qemuImg, qemuImgBitmaps, qemuImgCheck } from '../support/qemu.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-interop-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const PROGRAMS = { qblockd: undefined, qemu: 'qemu-system-x86_64' } as const;
type Program = keyof typeof PROGRAMS;

async function open(program: Program, image: string): Promise<{ daemon: DaemonProcess; client: RawClient }> {
  const daemon = await DaemonProcess.start(
    ['-blockdev', `driver=file,node-name=f0,filename=${image}`, '-blockdev', 'driver=qcow2,node-name=q0,file=f0'],
    { program: PROGRAMS[program] },
  );
  return { daemon, client: await daemon.client() };
}

async function snapshot(client: RawClient): Promise<Record<string, { count: number; sha256: string; recording: boolean }>> {
  const nodes = (await client.command({ execute: 'query-named-block-nodes' })).return;
  const bitmaps = nodes.find((node: any) => node['node-name'] === 'q0')['dirty-bitmaps'] ?? [];
  const result: Record<string, { count: number; sha256: string; recording: boolean }> = {};
  for (const bitmap of bitmaps) {
    const sha = await client.command({ execute: 'x-debug-block-dirty-bitmap-sha256', arguments: { node: 'q0', name: bitmap.name } });
    result[bitmap.name] = { count: bitmap.count, sha256: sha.return.sha256, recording: bitmap.recording };
  }
  return result;
}

async function quit(session: { daemon: DaemonProcess; client: RawClient }): Promise<void> {
  await session.client.command({ execute: 'quit' });
  await session.daemon.exited();
  await session.daemon.stop();
}

/** One program writes bitmaps and data, the other opens the image and must see the same bits. */
async function crossCheck(writer: Program, reader: Program): Promise<void> {
  const image = path.join(dir, `${writer}-to-${reader}.qcow2`);
  qemuImg('create', '-q', '-f', 'qcow2', image, '1G');
  const first = await open(writer, image);
  const run = (command: string, args: Record<string, unknown>) => first.client.command({ execute: command, arguments: args });
  await run('block-dirty-bitmap-add', { node: 'q0', name: 'g64k', persistent: true });
  await run('block-dirty-bitmap-add', { node: 'q0', name: 'g512', persistent: true, granularity: 512 });
  await run('block-dirty-bitmap-add', { node: 'q0', name: 'g1m', persistent: true, granularity: 1 << 20, disabled: true });
  for (const line of ['write -P 1 0 100k', 'write 300M 16M', 'write -z 700M 3M', 'write 1073741312 512']) {
    await run('human-monitor-command', { 'command-line': `qemu-io q0 "${line}"` });
  }
  await run('block-dirty-bitmap-merge', { node: 'q0', target: 'g1m', bitmaps: ['g512'] });
  const written = await snapshot(first.client);
  await quit(first);
  expect(qemuImgCheck(image)).toEqual({ corruptions: 0, leaks: 0, status: 0 });
  expect(qemuImgBitmaps(image).map((b) => [b.name, b.flags])).toEqual([
    ['g1m', []],
    ['g512', ['auto']],
    ['g64k', ['auto']],
  ]);
  const second = await open(reader, image);
  expect(await snapshot(second.client)).toEqual(written);
  await quit(second);
  expect(qemuImgCheck(image).corruptions).toBe(0);
}

describeInterop('persistent bitmaps cross between qblockd and QEMU 7.2', { qemuImg: true, qemuSystem: true }, () => {
  it('QEMU 7.2 reads what qblockd stored: same count and sha256 for every bitmap', () => crossCheck('qblockd', 'qemu'), 60_000);
  it('qblockd reads what QEMU 7.2 stored: same count and sha256 for every bitmap', () => crossCheck('qemu', 'qblockd'), 60_000);
  it('a SIGKILLed qblockd leaves in-use bitmaps that QEMU reports inconsistent', async () => {
    const image = path.join(dir, 'killed.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', image, '64M');
    qemuImg('bitmap', '--add', image, 'b');
    const session = await open('qblockd', image);
    await session.client.command({ execute: 'human-monitor-command', arguments: { 'command-line': 'qemu-io q0 "write 0 1M"' } });
    await session.daemon.stop();
    expect(qemuImgBitmaps(image)).toEqual([{ name: 'b', granularity: 65536, flags: ['in-use', 'auto'] }]);
    const qemu = await open('qemu', image);
    const nodes = (await qemu.client.command({ execute: 'query-named-block-nodes' })).return;
    expect(nodes.find((node: any) => node['node-name'] === 'q0')['dirty-bitmaps']).toEqual([
      { name: 'b', recording: false, persistent: true, busy: false, granularity: 65536, count: 0, inconsistent: true },
    ]);
    await quit(qemu);
    expect(qemuImgCheck(image).corruptions).toBe(0);
  }, 60_000);
});
