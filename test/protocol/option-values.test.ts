import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeInterop } from '../support/qemu.ts';
import { replyLines, type RecordedExchange } from '../support/oracle-table.ts';
import recorded from './recorded-blockdev-options.json' with { type: 'json' };

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
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const exchanges = recorded as RecordedExchange[];
const requests = exchanges.map((exchange) => exchange.request.replaceAll('DIR', dir));
const normalize = (line: string) => line.replaceAll(dir, 'DIR').replace(/#block\d+/g, '#block');

function expectRecorded(lines: string[]): void {
  expect(lines.map((line, index) => ({ request: exchanges[index]!.request, reply: normalize(line) }))).toEqual(
    exchanges.map((exchange) => ({ request: exchange.request, reply: normalize(exchange.reply) })),
  );
}

describe('option values of blockdev-add and human-monitor-command', () => {
  it('answer as QEMU 7.2 did, byte for byte', async () => {
    expectRecorded(await replyLines(requests));
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
  it('QEMU 7.2 still answers as recorded', async () => {
    expectRecorded(await replyLines(requests, { program: 'qemu-system-x86_64' }));
  });
});
