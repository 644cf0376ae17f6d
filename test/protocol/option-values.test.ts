import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeInterop } from '../support/qemu.ts';
import { replyLines, type RecordedExchange } from '../support/oracle-table.ts';
import recorded from './recorded-blockdev-options.json' with { type: 'json' };
import recordedQcow2 from './recorded-qcow2-options.json' with { type: 'json' };
import recordedUnused from './recorded-unused-options.json' with { type: 'json' };
import recordedObjectAdd from './recorded-object-add.json' with { type: 'json' };
import { buildImage } from '../support/qcow2-images.ts';

/**
 * blockdev-add with option values QEMU 7.2 checks (null-co/null-aio, file,
 * raw, the shared members), then query-named-block-nodes of what was
 * accepted and human-monitor-command's cpu-index, each reply recorded from
 * QEMU 7.2 (paths as DIR, generated node names as #block).
 */
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-options-'));
fs.writeFileSync(path.join(dir, 'odd.img'), '');
fs.truncateSync(path.join(dir, 'odd.img'), 1_000_000);
execFileSync('mkfifo', [path.join(dir, 'fifo')]);
fs.mkdirSync(path.join(dir, 'dir'));
fs.writeFileSync(path.join(dir, 'v3.qcow2'), buildImage());
fs.writeFileSync(path.join(dir, 'v2.qcow2'), buildImage({ version: 2 }));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const TABLES = {
  'null-co, null-aio, file, raw and the shared members; query-named-block-nodes; cpu-index': recorded as RecordedExchange[],
  'qcow2 cache, lazy-refcounts, data-file and backing options, on images built from the spec': recordedQcow2 as RecordedExchange[],
  'options no driver takes (an empty `cache`, empty blkdebug rule lists), refused once the node is open, children first': recordedUnused as RecordedExchange[],
  'object-add throttle-group: `limits` and the x- properties set one by one in QDict order': recordedObjectAdd as RecordedExchange[],
};
const normalize = (line: string) => line.replaceAll(dir, 'DIR').replace(/#block\d+/g, '#block');

async function expectRecorded(exchanges: RecordedExchange[], program?: string): Promise<void> {
  const lines = await replyLines(
    exchanges.map((exchange) => exchange.request.replaceAll('DIR', dir)),
    { program },
  );
  expect(lines.map((line, index) => ({ request: exchanges[index]!.request, reply: normalize(line) }))).toEqual(
    exchanges.map((exchange) => ({ request: exchange.request, reply: normalize(exchange.reply) })),
  );
}

describe('option values of blockdev-add and human-monitor-command', () => {
  it.each(Object.entries(TABLES))('%s: answered as QEMU 7.2 did, byte for byte', async (_name, exchanges) => {
    await expectRecorded(exchanges);
  });

  it('refuses a negative null-co size with the option parser text where QEMU 7.2 aborts', async () => {
    const [reply] = await replyLines(['{"execute": "blockdev-add", "arguments": {"driver": "null-co", "node-name": "n0", "size": -5}}']);
    expect(reply).toBe('{"error": {"class": "GenericError", "desc": "Parameter \'size\' expects a non-negative number below 2^64"}}');
  });

  it('refuses a FIFO opened read-only at once, where QEMU 7.2 blocks waiting for a writer', async () => {
    const request = JSON.stringify({ execute: 'blockdev-add', arguments: { driver: 'file', 'node-name': 'f0', filename: path.join(dir, 'fifo'), 'read-only': true } });
    const [reply] = await replyLines([request]);
    expect(normalize(reply!)).toBe('{"error": {"class": "GenericError", "desc": "\'file\' driver requires \'DIR/fifo\' to be a regular file"}}');
  });
});

describeInterop('QEMU 7.2 gives the recorded option-value replies', { qemuSystem: true }, () => {
  it.each(Object.entries(TABLES))('%s: QEMU 7.2 still answers as recorded', async (_name, exchanges) => {
    await expectRecorded(exchanges, 'qemu-system-x86_64');
  });
});
