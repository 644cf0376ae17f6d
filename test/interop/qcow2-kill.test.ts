import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { DaemonProcess } from '../support/daemon.ts';
import { describeInterop, qemuImg, qemuImgBitmaps, qemuImgCheck } from '../support/qemu.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-kill-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describeInterop('SIGKILL while qblockd stores bitmaps on quit', { qemuImg: true }, () => {
  it('never leaves a corrupt image, whatever the moment', async () => {
    const delays = [0, 1, 2, 3, 5, 8, 12, 20, 35, 60];
    const outcomes = new Set<string>();
    for (const delay of delays) {
      const image = path.join(dir, `kill-${delay}.qcow2`);
      qemuImg('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096', image, '4G');
      const daemon = await DaemonProcess.start([
        '-blockdev', `driver=file,node-name=f0,filename=${image}`,
        '-blockdev', 'driver=qcow2,node-name=q0,file=f0',
      ]);
      const client = await daemon.client();
      for (let i = 0; i < 40; i++) {
        await client.command({ execute: 'block-dirty-bitmap-add', arguments: { node: 'q0', name: `b${i}`, persistent: true, granularity: 4096 } });
      }
      for (let i = 0; i < 30; i++) {
        await client.command({ execute: 'human-monitor-command', arguments: { 'command-line': `qemu-io q0 "write -z ${i * 130}M 5M"` } });
      }
      client.send('{"execute": "quit"}\n');
      await new Promise((resolve) => setTimeout(resolve, delay));
      await daemon.stop();
      const check = qemuImgCheck(image);
      expect(check.corruptions, `killed ${delay} ms into quit`).toBe(0);
      const stored = qemuImgBitmaps(image);
      expect([0, 40], `killed ${delay} ms into quit`).toContain(stored.length);
      outcomes.add(stored.length === 0 ? 'old' : 'new');
      fs.rmSync(image);
    }
    console.log(`kill outcomes seen: ${[...outcomes].join(', ')}`);
  }, 120_000);
});
