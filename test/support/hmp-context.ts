import type { HmpContext } from '../../src/hmp/index.ts';
import { QmpError } from '../../src/qmp/errors.ts';

/** A monitor with no devices and QEMU 7.2.22's version; `overrides` give it what a test needs. */
export function hmpContext(overrides: Partial<HmpContext> = {}): HmpContext {
  return {
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
    ...overrides,
  };
}
