import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DaemonProcess } from '../support/daemon.ts';
import { describeInterop } from '../support/qemu.ts';
import recorded from './recorded-pipelined-shutdown.json' with { type: 'json' };

/**
 * One batch of requests written at once, and every line that came back until the
 * connection closed, recorded from QEMU 7.2: a blockdev-create over an exported node
 * fails on the export's unshared 'resize' before its reply (so the request queued behind
 * it sees it concluded); `quit` closes the exports, then ends the jobs, and only then
 * replies. (A create that fails after its first write races QEMU's monitor on the
 * thread pool: under load QEMU answered the next request first, so none is pinned here.)
 */
const REQUESTS = [
  { execute: 'nbd-server-start', arguments: { addr: { type: 'unix', data: { path: 'DIR/nbd.sock' } } } },
  { execute: 'block-export-add', arguments: { type: 'nbd', id: 'e0', 'node-name': 'n0' } },
  { execute: 'blockdev-create', arguments: { 'job-id': 'b0', options: { driver: 'qcow2', file: 'n0', size: 16777216 } } },
  { execute: 'query-jobs' },
  { execute: 'block-export-add', arguments: { type: 'nbd', id: 'e1', 'node-name': 'n1', writable: true } },
  { execute: 'quit' },
];
const TIMESTAMP = /"timestamp": \{"seconds": \d+, "microseconds": \d+\}/g;

async function transcript(program?: string): Promise<string[]> {
  const daemon = await DaemonProcess.start(['-blockdev', 'driver=null-co,node-name=n0,size=16777216', '-blockdev', 'driver=null-co,node-name=n1,size=16777216'], { program });
  try {
    const client = await daemon.client();
    const dir = path.dirname(daemon.socketPath);
    client.send(REQUESTS.map((request) => JSON.stringify(request).replaceAll('DIR', dir) + '\n').join(''));
    const lines: string[] = [];
    for (;;) {
      let line: string;
      try {
        line = await client.readLine(10_000);
      } catch {
        break;
      }
      lines.push(line.replaceAll(dir, 'DIR').replace(TIMESTAMP, '"timestamp": {"seconds": S, "microseconds": U}'));
    }
    return lines;
  } finally {
    await daemon.stop();
  }
}

describe('pipelined requests around failing jobs, and quit', () => {
  it('answer line for line as QEMU 7.2 did', async () => {
    expect(await transcript()).toEqual(recorded);
  });
});

describeInterop('QEMU 7.2 answers the pipelined batch as recorded', { qemuSystem: true }, () => {
  it('line for line', async () => {
    expect(await transcript('qemu-system-x86_64')).toEqual(recorded);
  });
});
