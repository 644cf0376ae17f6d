import { describe, expect, it } from 'vitest';
import { NO_MEDIUM_TARGET, runHumanMonitorCommand, type HmpContext } from '../../../src/hmp/index.ts';
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
    // Only C's blanks separate words: Unicode spaces (U+FEFF, U+00A0, U+2028) are text to QEMU.
    ["\ufeff", "unknown command: '\ufeff'\r\n"],
    ["info\u00a0block", "unknown command: 'info\u00a0block'\r\n"],
    ["help\u00a0info", "unknown command: 'help\u00a0info'\r\n"],
    ["info\u2028block", "unknown command: 'info\u2028block'\r\n"],
    ["\u00a0", "unknown command: '\u00a0'\r\n"],
    ["qemu-io\u00a0n0 \"read 0 1\"", "unknown command: 'qemu-io\u00a0n0'\r\n"],
    ["block_resize n0 \u00a01M", "invalid size\r\nTry \"help block_resize\" for more information\r\n"],
    ["block_resize n0 1M\u00a0", "block_resize: extraneous characters at the end of line\r\nTry \"help block_resize\" for more information\r\n"],
    ["qemu-io n0 \"read 0 512\"\u00a0", "qemu-io: extraneous characters at the end of line\r\nTry \"help qemu-io\" for more information\r\n"],
  ])('%j answers %j', (line, reply) => {
    expect(runHumanMonitorCommand(line, noDevices)).toBe(reply);
  });
});

// QEMU 7.2.22 (-M pc without -nodefaults), qemu-io on the empty ide1-cd0: replies and standard output.
describe('qemu-io on a drive without a medium', () => {
  it.each([
    ['qemu-io ide1-cd0 "read 0 512"', 'read failed: No medium found\n'],
    ['qemu-io ide1-cd0 "write 0 512"', 'write failed: No medium found\n'],
    ['qemu-io ide1-cd0 "write -z 0 512"', 'write failed: No medium found\n'],
    ['qemu-io ide1-cd0 "discard 0 512"', 'discard failed: No medium found\n'],
    ['qemu-io ide1-cd0 "flush"', ''],
    ['qemu-io ide1-cd0 "read 0 2G"', 'length cannot exceed 2147483136, given 2G\n'],
    ['qemu-io ide1-cd0 "read 0 x"', 'Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- x\n'],
  ])('%j prints %j and replies ""', (line, printed) => {
    const output: string[] = [];
    const context: HmpContext = { ...noDevices, print: (text) => void output.push(text), resolveQemuIoTarget: () => NO_MEDIUM_TARGET };
    expect(runHumanMonitorCommand(line, context)).toBe('');
    expect(output.join('')).toBe(printed);
  });
});
