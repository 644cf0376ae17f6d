import { describe, expect, it } from 'vitest';
import { runHumanMonitorCommand } from '../../../src/hmp/index.ts';
import { hmpContext } from '../../support/hmp-context.ts';

const noDevices = hmpContext();

// Replies of QEMU 7.2.22 (qemu-system-x86_64 -M none) to the same command lines.
describe('human-monitor-command lines without a qemu-io command', () => {
  it.each([
    ['', ''],
    ['   ', ''],
    [' \t', ''],
    ['aaa', "unknown command: 'aaa'\r\n"],
    ['é', "unknown command: 'é'\r\n"],
    ['qemu-io', 'qemu-io: block device name expected\r\nTry "help qemu-io" for more information\r\n'],
  ])('%j answers %j', (line, reply) => {
    expect(runHumanMonitorCommand(line, noDevices)).toBe(reply);
  });
});
