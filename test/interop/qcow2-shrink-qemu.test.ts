import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { DaemonProcess } from '../support/daemon.ts';
import { describeInterop, qemuImg, qemuImgCheck } from '../support/qemu.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-shrink-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/**
 * A qcow2 block_resize shrink leaves the same file, byte for byte, as QEMU 7.2's:
 * L2 tables the discard allocates (an L1 entry without one, even past the new end),
 * data clusters freed and reused, tables past the end freed with their stale entries
 * (cleared only in QEMU's cache unless a later allocation flushed it), the free tail cut.
 */
const SCENARIOS = [
  { name: 'an empty 16 MiB image to 1 MiB (a table is allocated)', size: '16M', writes: [], to: 1 << 20 },
  { name: 'data clusters past 16 MiB freed, the tail cut', size: '64M', writes: ['write 0 64k', 'write 8M 1M', 'write 40M 2M'], to: 16 << 20 },
  { name: 'tables past the end freed', size: '2G', writes: ['write 0 64k', 'write 1536M 1M'], to: 1 << 20 },
  { name: 'empty tables allocated and freed again', size: '2G', writes: [], to: 600 << 20 },
  { name: 'freed tables keep their old entries', size: '2G', writes: ['write 100M 1M', 'write 1G 64k', 'write 1800M 64k'], to: 600 << 20 },
  { name: 'a later allocation writes the cleared table out first', size: '2G', writes: ['write 1G 64k'], to: 600 << 20 },
  { name: 'within the last cluster', size: '1M', writes: ['write 0 1M'], to: (1 << 20) - 512 },
];

async function shrink(program: string | undefined, image: string, writes: string[], size: number): Promise<void> {
  const daemon = await DaemonProcess.start(['-blockdev', `driver=file,node-name=f0,filename=${image}`, '-blockdev', 'driver=qcow2,node-name=q0,file=f0'], { program });
  try {
    const client = await daemon.client();
    for (const write of writes) await client.command({ execute: 'human-monitor-command', arguments: { 'command-line': `qemu-io q0 "${write}"` } });
    expect(await client.command({ execute: 'block_resize', arguments: { 'node-name': 'q0', size } })).toEqual({ return: {} });
    await client.command({ execute: 'quit' });
    await daemon.exited();
  } finally {
    await daemon.stop();
  }
}

describeInterop('qcow2 shrink against QEMU 7.2', { qemuImg: true, qemuSystem: true }, () => {
  it.each(SCENARIOS)('$name: the same file as QEMU 7.2 leaves', async ({ size, writes, to }) => {
    const base = path.join(dir, 'base.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', base, size);
    const files: Buffer[] = [];
    for (const program of ['qemu-system-x86_64', undefined]) {
      const image = path.join(dir, `${program ?? 'qblockd'}.qcow2`);
      fs.copyFileSync(base, image);
      await shrink(program, image, writes, to);
      expect(qemuImgCheck(image)).toEqual({ corruptions: 0, leaks: 0, status: 0 });
      files.push(fs.readFileSync(image));
    }
    expect(files[1]!.length).toBe(files[0]!.length);
    expect(files[1]!.equals(files[0]!)).toBe(true);
  });
});
