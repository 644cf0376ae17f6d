import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { replyLines } from '../support/oracle-table.ts';
import { HOSTILE_HEADERS, writeHostileImages } from '../support/qcow2-images.ts';
import { describeInterop } from '../support/qemu.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-hostile-qemu-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describeInterop('hostile qcow2 headers: the texts recorded from QEMU 7.2', { qemuSystem: true }, () => {
  it('are what QEMU 7.2 answers to blockdev-add', async () => {
    const requests = writeHostileImages(dir).map((file, index) =>
      JSON.stringify({ execute: 'blockdev-add', arguments: { driver: 'qcow2', 'node-name': `q${index}`, file: { driver: 'file', filename: file } } }),
    );
    const replies = await replyLines(requests, { program: 'qemu-system-x86_64' });
    expect(replies.map((reply) => JSON.parse(reply).error?.desc)).toEqual(HOSTILE_HEADERS.map((hostile) => hostile.qemuError));
  });
});
