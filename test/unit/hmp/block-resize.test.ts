import { describe, expect, it } from 'vitest';
import { runHumanMonitorCommand, type HmpContext } from '../../../src/hmp/index.ts';
import { hmpContext } from '../../support/hmp-context.ts';
import { QmpError } from '../../../src/qmp/errors.ts';

const MiB = 1n << 20n;

/** One -drive device `d0`; records the sizes the monitor asked for. */
function monitorWithDevice(): { context: HmpContext; sizes: bigint[] } {
  const sizes: bigint[] = [];
  const context = hmpContext({
    resizeDevice(device, size) {
      if (device !== 'd0') throw new QmpError(`Cannot find device='${device}' nor node-name=''`);
      if (size > 1n << 52n) throw new QmpError('Failed to grow the L1 table: File too large');
      sizes.push(size);
    },
  });
  return { context, sizes };
}

// QEMU 7.2.22's replies and the sizes it resized a -drive qcow2 device to (query-block), iotest 086.
describe('HMP block_resize', () => {
  it.each([
    ['block_resize d0 48M', 48n * MiB],
    ['block_resize d0 1.5M', 3n * (MiB / 2n)],
    ['block_resize d0 0x100000', 1n << 40n],
    ['block_resize d0 100', 100n * MiB],
    ['block_resize d0 0', 0n],
    ['block_resize d0 1T', 1n << 40n],
    ['block_resize d0 4096b', 4096n],
    ['block_resize   d0   32k  ', 32n * 1024n],
  ])('%j resizes to %s bytes and answers ""', (line, size) => {
    const { context, sizes } = monitorWithDevice();
    expect(runHumanMonitorCommand(line, context)).toBe('');
    expect(sizes).toEqual([size]);
  });

  it.each([
    ['block_resize q0 48M', "Error: Cannot find device='q0' nor node-name=''\r\n"],
    ['block_resize d0 1e', 'Error: Failed to grow the L1 table: File too large\r\n'],
    ['block_resize d0', 'invalid size\r\nTry "help block_resize" for more information\r\n'],
    ['block_resize d0 -5', 'invalid size\r\nTry "help block_resize" for more information\r\n'],
    ['block_resize d0 12x', 'block_resize: extraneous characters at the end of line\r\nTry "help block_resize" for more information\r\n'],
    ['block_resize', 'block_resize: block device name expected\r\nTry "help block_resize" for more information\r\n'],
    ['help block_resize', 'block_resize device size -- resize a block image\r\n'],
  ])('%j answers %j and resizes nothing', (line, reply) => {
    const { context, sizes } = monitorWithDevice();
    expect(runHumanMonitorCommand(line, context)).toBe(reply);
    expect(sizes).toEqual([]);
  });
});
