import { describe, expect, it } from 'vitest';
import { cvtnum } from '../../src/hmp/qemu-io.ts';
import { describeInterop } from '../support/qemu.ts';
import { replyLines, type RecordedExchange } from '../support/oracle-table.ts';
import recorded from './recorded-qemu-io.json' with { type: 'json' };

/**
 * qemu-io through human-monitor-command on a 4 GiB null-co node with a
 * 512-byte-granularity bitmap: each command line is followed by the bitmap's
 * sha256 (or its count) and a clear, so every reply shows what the command
 * marked. Numbers (hex, octal-looking, fractions, suffixes, limits), options,
 * argument counts and the monitor's own string errors; replies recorded from
 * QEMU 7.2.
 */
const exchanges = recorded as RecordedExchange[];
const requests = exchanges.map((exchange) => exchange.request);

describe('qemu-io arguments', () => {
  it('mark and answer as QEMU 7.2 did', async () => {
    const lines = await replyLines(requests);
    expect(lines.map((reply, index) => ({ request: requests[index], reply }))).toEqual(exchanges);
  });

  it.each([
    ['0x3ff0000', 0x3ff0000n],
    ['010', 10n],
    ['1.5k', 1536n],
    ['+5', 5n],
    ['0.5M', 524288n],
    ['1K', 1024n],
    ['5b', 5n],
  ])('cvtnum reads %s as %s', (text, value) => {
    expect(cvtnum(text)).toEqual({ value });
  });

  it.each(['1.5', '1e3', '0x', '1kb', '1.5b', '00x10', '0x1.5k', '-1', '18446744073709551616', '9223372036854775808'])('cvtnum refuses %s', (text) => {
    expect(cvtnum(text)).toBeNull();
  });

  it('cvtnum takes a hex number with a suffix, with the deprecation warning', () => {
    expect(cvtnum('0x10k')).toEqual({ value: 16384n, warning: 'warning: Using a multiplier suffix on hex numbers is deprecated: 0x10k' });
  });
});

describeInterop('QEMU 7.2 gives the recorded qemu-io replies', { qemuSystem: true }, () => {
  it('QEMU 7.2 still answers as recorded', async () => {
    const lines = await replyLines(requests, { program: 'qemu-system-x86_64' });
    expect(lines.map((reply, index) => ({ request: requests[index], reply }))).toEqual(exchanges);
  });
});
