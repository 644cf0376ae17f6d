import { describe, expect, it } from 'vitest';
import { runHumanMonitorCommand, type HmpContext } from '../../../src/hmp/index.ts';
import { QmpError } from '../../../src/qmp/errors.ts';

const noDevices: HmpContext = {
  print: () => {},
  resolveQemuIoTarget(device: string): never {
    throw new QmpError(`Cannot find device='${device}' nor node-name='${device}'`);
  },
  blockBackends: () => [],
  namedNodes: () => [],
  version: { qemu: { major: 7, minor: 2, micro: 22 }, package: '' },
  status: () => ({ running: true, singlestep: false, status: 'running' }),
  resizeDevice(device: string): never {
    throw new QmpError(`Cannot find device='${device}' nor node-name=''`);
  },
};

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
