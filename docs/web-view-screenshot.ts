// Regenerates docs/web-view.png, the README's picture of the web view:
//   node --import tsx docs/web-view-screenshot.ts
// Starts qblockd with --web on a scratch qcow2 image, builds a small scene over QMP and
// photographs the page in Debian's headless chromium (never a downloaded browser).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM, chromiumArguments } from '../test/support/chromium.ts';
import { DaemonProcess, REPO, waitFor } from '../test/support/daemon.ts';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-screenshot-'));
const image = path.join(scratch, 'disk.qcow2');
execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', image, '16T']);
const daemon = await DaemonProcess.start([
  '--web',
  '--blockdev', `driver=file,node-name=file0,filename=${image}`,
  '--blockdev', 'driver=qcow2,node-name=disk0,file=file0',
  '--blockdev', JSON.stringify({ driver: 'null-co', 'node-name': 'scratch0', size: 2 ** 44 }),
]);
try {
  await waitFor(() => /web view at (\S+)/.test(daemon.stderr.join('')), 10_000);
  const url = /web view at (\S+)/.exec(daemon.stderr.join(''))![1]!;
  const qmp = await daemon.client();
  const run = async (execute: string, args: Record<string, unknown> = {}) => {
    const reply = await qmp.command({ execute, arguments: args });
    if ('error' in reply) throw new Error(`${execute}: ${reply.error.desc}`);
  };
  const io = (node: string, command: string) => run('human-monitor-command', { 'command-line': `qemu-io ${node} "${command}"` });
  await run('block-dirty-bitmap-add', { node: 'disk0', name: 'backup-full', persistent: true });
  await run('block-dirty-bitmap-add', { node: 'disk0', name: 'daily', granularity: 1 << 20 });
  await run('block-dirty-bitmap-add', { node: 'scratch0', name: 'export-view' });
  for (let i = 0; i < 400; i++) await io('disk0', `write ${(i * 40_961_937_137) % 2 ** 44 - ((i * 40_961_937_137) % 2 ** 44) % 65536} 64k`);
  await io('disk0', 'write 6T 256M');
  await run('block-dirty-bitmap-disable', { node: 'disk0', name: 'daily' });
  await io('disk0', 'write 12T 128M');
  await io('scratch0', 'write -z -n 4T 3T');
  await io('scratch0', 'write -z -n 11T 300G');
  await run('block-dirty-bitmap-disable', { node: 'scratch0', name: 'export-view' });
  await run('nbd-server-start', { addr: { type: 'unix', data: { path: path.join(scratch, 'nbd.sock') } } });
  await run('block-export-add', { type: 'nbd', id: 'export0', 'node-name': 'scratch0', bitmaps: ['export-view'] });
  await run('blockdev-add', { driver: 'null-co', 'node-name': 'target0', size: 2 ** 44 });
  await run('blockdev-backup', { 'job-id': 'backup0', device: 'scratch0', target: 'target0', sync: 'full', speed: 2 ** 40 });

  const context = await chromium.launchPersistentContext(path.join(scratch, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: chromiumArguments(),
    viewport: { width: 1280, height: 900 },
  });
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]');
  await page.fill('#console-input', 'block-dirty-bitmap-merge node=disk0 target=daily bitmaps=["backup-full"]');
  await page.press('#console-input', 'Enter');
  await page.waitForTimeout(500);
  const out = path.join(REPO, 'docs', 'web-view.png');
  await page.screenshot({ path: out, fullPage: true });
  await context.close();
  qmp.close();
  console.log(`wrote ${out}`);
} finally {
  await daemon.stop();
  fs.rmSync(scratch, { recursive: true, force: true });
}
