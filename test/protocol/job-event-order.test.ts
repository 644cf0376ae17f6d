import { describe, expect, it } from 'vitest';
import { describeInterop } from '../support/qemu.ts';
import { jobLines, type RecordedJobLines } from '../support/job-lines.ts';
import recorded from './recorded-job-events.json' with { type: 'json' };

/**
 * Where a job's events fall around the reply of the command that started it,
 * recorded from QEMU 7.2. QEMU runs the job's coroutine inside the command up
 * to its first yield: a blockdev-create that fails before then (option checks,
 * missing nodes, permissions, the file's creation or lock) sends aborting and
 * concluded before its `return`; one that fails or succeeds later (the file
 * emptied and grown, the image written, a node defined in place opened) sends
 * them after it.
 */
const exchanges = recorded as RecordedJobLines[];

async function expectRecorded(program?: string): Promise<void> {
  const lines = await jobLines(exchanges.map((exchange) => exchange.request), program);
  expect(exchanges.map((exchange, index) => ({ request: exchange.request, lines: lines[index] }))).toEqual(exchanges);
}

describe('job events around the reply of blockdev-create', () => {
  it('are sent in the order QEMU 7.2 sent them, byte for byte', async () => {
    await expectRecorded();
  });
});

describeInterop('QEMU 7.2 sends the recorded job events', { qemuSystem: true }, () => {
  it('in the recorded order', async () => {
    await expectRecorded('qemu-system-x86_64');
  });
});
