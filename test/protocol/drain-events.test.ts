import { describe, expect, it } from 'vitest';
import { DaemonProcess, type RawClient } from '../support/daemon.ts';
import { describeInterop } from '../support/qemu.ts';
import recorded from './recorded-drain-events.json' with { type: 'json' };

/**
 * Two backup jobs asleep in their rate limit, and the commands that drain
 * them: every `transaction`, and every command QEMU runs as a transaction of
 * one, drains all nodes first (each job pauses at the oldest of its own nodes,
 * the filter and the target, and resumes at the newest); a snapshot also
 * drains the node it snapshots from the moment it is found to the end, failing
 * or not; a plain bitmap command drains nothing. A BlockBackend leaving a
 * node drains it twice: an export's, and the one a format node probes its
 * `file` through (blkdebug's `image` is not probed). Cancelling a job asleep
 * or paused ends it before the reply. Every line recorded from QEMU 7.2, in the
 * order it came.
 */
const DRAINS: Array<Record<string, unknown>> = [
  { execute: 'blockdev-add', arguments: { driver: 'null-co', 'node-name': 'src1', size: 67108864 } },
  { execute: 'blockdev-add', arguments: { driver: 'null-co', 'node-name': 'src2', size: 67108864 } },
  { execute: 'blockdev-add', arguments: { driver: 'null-co', 'node-name': 'tgt2', size: 67108864 } },
  { execute: 'blockdev-add', arguments: { driver: 'null-co', 'node-name': 'tgt1', size: 67108864 } },
  { execute: 'blockdev-add', arguments: { driver: 'null-co', 'node-name': 'other', size: 67108864 } },
  { execute: 'blockdev-backup', arguments: { 'job-id': 'j2', device: 'src2', target: 'tgt2', sync: 'full', speed: 1 } },
  { execute: 'blockdev-backup', arguments: { 'job-id': 'j1', device: 'src1', target: 'tgt1', sync: 'full', speed: 1 } },
  { execute: 'blockdev-backup', arguments: { 'job-id': 'j3', device: 'src1', target: 'tgt1', sync: 'full' } },
  { execute: 'transaction', arguments: { actions: [] } },
  { execute: 'transaction', arguments: { actions: [{ type: 'block-dirty-bitmap-add', data: { node: 'other', name: 'b0' } }] } },
  { execute: 'transaction', arguments: { actions: [{ type: 'block-dirty-bitmap-add', data: { node: 'src1', name: 'b1' } }], properties: { 'completion-mode': 'grouped' } } },
  { execute: 'transaction', arguments: { actions: [{ type: 'block-dirty-bitmap-add', data: { node: 'nosuch', name: 'b1' } }] } },
  { execute: 'block-dirty-bitmap-add', arguments: { node: 'src1', name: 'b2' } },
  { execute: 'job-pause', arguments: { id: 'j1' } },
  { execute: 'transaction', arguments: { actions: [] } },
  { execute: 'job-resume', arguments: { id: 'j1' } },
  { execute: 'blockdev-snapshot-sync', arguments: { 'node-name': 'other', 'snapshot-file': 'DIR/o.qcow2', 'snapshot-node-name': 'o2', format: 'qcow2' } },
  { execute: 'blockdev-snapshot-sync', arguments: { 'node-name': 'src1', 'snapshot-file': 'DIR/s.qcow2', 'snapshot-node-name': 's2', format: 'qcow2' } },
  { execute: 'blockdev-snapshot-sync', arguments: { 'node-name': 'src1', 'snapshot-file': 'DIR/s3.qcow2', 'snapshot-node-name': 's3', format: 'qcow2' } },
  { execute: 'blockdev-snapshot-sync', arguments: { 'node-name': 'nosuch', 'snapshot-file': 'DIR/s4.qcow2', 'snapshot-node-name': 's4', format: 'qcow2' } },
  { execute: 'blockdev-snapshot-sync', arguments: { 'node-name': 'src2', 'snapshot-file': 'DIR/nodir/x.qcow2', 'snapshot-node-name': 's5', format: 'qcow2' } },
  { execute: 'blockdev-add', arguments: { driver: 'qcow2', 'node-name': 'ov', file: { driver: 'file', filename: 'DIR/o.qcow2' }, backing: null } },
  { execute: 'blockdev-snapshot', arguments: { node: 'src2', overlay: 'ov' } },
  { execute: 'blockdev-add', arguments: { driver: 'raw', 'node-name': 'r1', file: 'tgt2', 'read-only': true } },
  { execute: 'blockdev-add', arguments: { driver: 'blkdebug', 'node-name': 'd1', image: 'tgt2', 'read-only': true } },
  { execute: 'blockdev-add', arguments: { driver: 'raw', 'node-name': 'r2', file: 'src1', offset: 1, size: 999999999999 } },
  { execute: 'nbd-server-start', arguments: { addr: { type: 'unix', data: { path: 'DIR/nbd.sock' } } } },
  { execute: 'block-export-add', arguments: { type: 'nbd', id: 'e0', 'node-name': 'tgt1' } },
  { execute: 'block-export-add', arguments: { type: 'nbd', id: 'e1', 'node-name': 'other' } },
  { execute: 'block-export-del', arguments: { id: 'e0' } },
  { execute: 'block-export-del', arguments: { id: 'e1' } },
  { execute: 'query-jobs' },
  { execute: 'job-cancel', arguments: { id: 'j1' } },
  { execute: 'job-pause', arguments: { id: 'j2' } },
  { execute: 'block-job-cancel', arguments: { device: 'j2', force: true } },
  { execute: 'query-jobs' },
];

/**
 * A job waiting for a throttled target: its copy counts as progress only once the write is
 * through, and a cancel does not cut the wait short: the reply comes first, the job's
 * events only when its requests are done.
 */
const THROTTLED_CANCEL: Array<Record<string, unknown>> = [
  { execute: 'blockdev-add', arguments: { driver: 'null-co', 'node-name': 'src', size: 67108864 } },
  { execute: 'blockdev-add', arguments: { driver: 'null-co', 'node-name': 'tgt', size: 67108864 } },
  { execute: 'object-add', arguments: { 'qom-type': 'throttle-group', id: 'tg', limits: { 'bps-write': 65536 } } },
  { execute: 'blockdev-add', arguments: { driver: 'throttle', 'node-name': 'thr', 'throttle-group': 'tg', file: 'tgt' } },
  { execute: 'blockdev-backup', arguments: { 'job-id': 'j', device: 'src', target: 'thr', sync: 'full' } },
  { execute: 'block-job-cancel', arguments: { device: 'j' } },
  { execute: 'query-jobs' },
];

const TIMESTAMP = /"timestamp": \{"seconds": \d+, "microseconds": \d+\}/g;

/** Every line that came after each request, up to and with its reply; the jobs have copied their first chunk before the drains begin. */
async function transcript(script: Array<Record<string, unknown>>, program?: string): Promise<string[][]> {
  const daemon = await DaemonProcess.start([], { program });
  try {
    const client = await daemon.client();
    const dir = daemon.dir;
    const exchanges: string[][] = [];
    for (const request of script) {
      const lines: string[] = [];
      client.send(JSON.stringify(request).replaceAll('DIR', dir) + '\n');
      for (;;) {
        const line = (await client.readLine(10_000)).replaceAll(dir, 'DIR').replace(TIMESTAMP, '"timestamp": T');
        lines.push(line);
        if (!line.startsWith('{"timestamp"')) break;
      }
      exchanges.push(lines);
      if (request.execute === 'blockdev-backup') await untilFirstChunkCopied(client, request);
    }
    client.close();
    return exchanges;
  } finally {
    await daemon.stop();
  }
}

/** A rate-limited job copies one chunk, then sleeps; a job that failed to start is not waited for. */
async function untilFirstChunkCopied(client: RawClient, request: Record<string, unknown>): Promise<void> {
  const id = (request.arguments as Record<string, unknown>)['job-id'];
  for (let attempt = 0; attempt < 500; attempt++) {
    const jobs = (await client.command({ execute: 'query-jobs' })).return as Array<{ id: string; 'current-progress': number }>;
    const job = jobs.find((candidate) => candidate.id === id);
    if (!job || job['current-progress'] > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('drains and cancels of running jobs', () => {
  it('send every event where QEMU 7.2 sent it', async () => {
    expect(await transcript(DRAINS)).toEqual(recorded.drains);
  });

  it('a cancel waits for a throttled write in flight, as in QEMU 7.2', async () => {
    expect(await transcript(THROTTLED_CANCEL)).toEqual(recorded.throttledCancel);
  });
});

describeInterop('QEMU 7.2 sends the recorded drain events', { qemuSystem: true }, () => {
  it('in the recorded order', async () => {
    expect(await transcript(DRAINS, 'qemu-system-x86_64')).toEqual(recorded.drains);
    expect(await transcript(THROTTLED_CANCEL, 'qemu-system-x86_64')).toEqual(recorded.throttledCancel);
  });
});
