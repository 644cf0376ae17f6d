import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { DaemonProcess, type RawClient } from '../support/daemon.ts';
import { describeInterop, qemuImg, qemuImgBitmaps, qemuImgCheck } from '../support/qemu.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-backup-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A monitor connection that keeps the events it meets, as a backup tool's QMP client does. */
class Monitor {
  readonly events: Array<{ event: string; data?: Record<string, unknown> }> = [];

  constructor(private readonly client: RawClient) {}

  async execute(command: string, args?: Record<string, unknown>): Promise<any> {
    this.client.send(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + '\n');
    for (;;) {
      const message = JSON.parse(await this.client.readLine(30_000));
      if ('event' in message) this.events.push(message);
      else if ('error' in message) throw new Error(`${command}: ${message.error.desc}`);
      else return message.return;
    }
  }

  /** Waits for the job's final event, polling query-block-jobs as tools do. */
  async waitForJob(id: string): Promise<string[]> {
    for (;;) {
      const jobs: Array<{ device: string }> = await this.execute('query-block-jobs');
      const final = this.events.find((event) => event.event === 'BLOCK_JOB_COMPLETED' && event.data?.device === id);
      if (final && !jobs.some((job) => job.device === id)) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const sequence = this.events
      .filter((event) => event.data?.id === id || event.data?.device === id)
      .map((event) => (event.event === 'JOB_STATUS_CHANGE' ? String(event.data!.status) : event.event));
    this.events.length = 0;
    return sequence;
  }
}

const disk = path.join(dir, 'disk.qcow2');
const SIZE = '128M';

async function launch(): Promise<{ daemon: DaemonProcess; monitor: Monitor }> {
  const daemon = await DaemonProcess.start([
    '-blockdev', `driver=file,node-name=disk-file,filename=${disk}`,
    '-blockdev', 'driver=qcow2,node-name=disk,file=disk-file',
    '-name', 'guest=backup-test',
  ]);
  const monitor = new Monitor(await daemon.client());
  return { daemon, monitor };
}

async function backupInto(monitor: Monitor, name: string, action: Record<string, unknown>, extra: Array<Record<string, unknown>> = []) {
  const image = path.join(dir, `${name}.qcow2`);
  qemuImg('create', '-q', '-f', 'qcow2', image, SIZE);
  await monitor.execute('blockdev-add', { driver: 'qcow2', 'node-name': name, file: { driver: 'file', filename: image } });
  await monitor.execute('transaction', {
    actions: [...extra, { type: 'blockdev-backup', data: { device: 'disk', target: name, 'job-id': name, ...action } }],
  });
  const sequence = await monitor.waitForJob(name);
  await monitor.execute('blockdev-del', { 'node-name': name });
  return { image, sequence };
}

/** quit, then wait until the daemon has stored the bitmap and exited. */
async function quit(daemon: DaemonProcess, monitor: Monitor) {
  await monitor.execute('quit');
  expect(await daemon.exited()).toBe(0);
  await daemon.stop();
}

async function write(monitor: Monitor, command: string) {
  expect(await monitor.execute('human-monitor-command', { 'command-line': `qemu-io disk "${command}"` })).toBe('');
}

describeInterop('a backup tool: full and incremental backups across restarts, restored and compared', { qemuImg: true }, () => {
  it('restores an image qemu-img compare finds identical', async () => {
    qemuImg('create', '-q', '-f', 'qcow2', disk, SIZE);
    let { daemon, monitor } = await launch();
    expect(await monitor.execute('query-status')).toEqual({ running: true, singlestep: false, status: 'running' });
    expect(await monitor.execute('query-name')).toEqual({ name: 'backup-test' });
    await write(monitor, 'write -P 1 0 8M');
    await write(monitor, 'write -P 2 100M 3M');

    const full = await backupInto(monitor, 'full', { sync: 'full' }, [
      { type: 'block-dirty-bitmap-add', data: { node: 'disk', name: 'tool', persistent: true } },
    ]);
    expect(full.sequence).toEqual(['created', 'running', 'paused', 'running', 'waiting', 'pending', 'BLOCK_JOB_COMPLETED', 'concluded', 'null']);
    await write(monitor, 'write -P 3 4M 1M');
    await write(monitor, 'write -P 4 64M 64k');
    await quit(daemon, monitor);

    const increments: string[] = [];
    for (const [step, writes] of [[1, ['write -P 5 4M 64k', 'write -P 6 120M 2M']], [2, []]] as const) {
      ({ daemon, monitor } = await launch());
      const nodes: Array<{ 'node-name': string; 'dirty-bitmaps'?: Array<{ name: string; count: number; persistent: boolean }> }> =
        await monitor.execute('query-named-block-nodes');
      const bitmap = nodes.find((node) => node['node-name'] === 'disk')!['dirty-bitmaps']![0]!;
      expect(bitmap.name).toBe('tool');
      expect(bitmap.persistent).toBe(true);
      expect(bitmap.count).toBeGreaterThan(0);
      const increment = await backupInto(monitor, `inc${step}`, { sync: 'incremental', bitmap: 'tool' });
      expect(increment.sequence.at(-3)).toBe('BLOCK_JOB_COMPLETED');
      increments.push(increment.image);
      for (const command of writes) await write(monitor, command);
      await quit(daemon, monitor);
    }

    expect(qemuImgCheck(disk)).toMatchObject({ corruptions: 0, leaks: 0, status: 0 });
    expect(qemuImgBitmaps(disk).map((bitmap) => bitmap.name)).toEqual(['tool']);
    let base = full.image;
    for (const image of increments) {
      qemuImg('rebase', '-u', '-f', 'qcow2', '-b', base, '-F', 'qcow2', image);
      base = image;
    }
    for (const image of [...increments].reverse()) qemuImg('commit', '-q', '-f', 'qcow2', image);
    expect(qemuImg('compare', '-f', 'qcow2', '-F', 'qcow2', disk, full.image).trim()).toBe('Images are identical.');
  }, 120_000);
});
