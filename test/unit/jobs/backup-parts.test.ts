import { describe, expect, it } from 'vitest';
import { allocatedRuns } from '../../../src/block/block-status.ts';
import { BlkdebugDriver } from '../../../src/block/drivers/blkdebug.ts';
import { NullDriver } from '../../../src/block/drivers/null-co.ts';
import { defaultQcow2Image } from '../../../src/block/drivers/qcow2/create.ts';
import { Qcow2Image } from '../../../src/block/drivers/qcow2/image.ts';
import { MemoryByteStore } from '../../../src/block/drivers/byte-store.ts';
import { BlockIoError } from '../../../src/block/io-error.ts';
import { RateLimit } from '../../../src/block/jobs/rate-limit.ts';
import { BlockNode } from '../../../src/block/node.ts';

describe('rate limit (QEMU ratelimit.h: 100 ms slices)', () => {
  it('lets the first request through, then delays in proportion to what went over the quota', () => {
    const limit = new RateLimit();
    limit.setSpeed(1 << 20);
    const now = 5e9;
    expect(limit.delay(0, now)).toBe(0);
    // 1 MiB against a quota of 104857.6 bytes per 100 ms slice: ten slices.
    expect(limit.delay(1 << 20, now)).toBe(1e9);
    expect(limit.delay(0, now + 5e8)).toBe(5e8);
    expect(limit.delay(0, now + 1e9 + 1)).toBe(0);
  });

  it('is off at speed 0, and speed 1 still lets one request through', () => {
    const limit = new RateLimit();
    expect(limit.delay(1 << 30, 0)).toBe(0);
    limit.setSpeed(1);
    expect(limit.delay(0, 1e9)).toBe(0);
    expect(limit.delay(1 << 20, 1e9)).toBeGreaterThan(1e9);
  });
});

function blkdebug(inject: ConstructorParameters<typeof BlkdebugDriver>[1], states: ConstructorParameters<typeof BlkdebugDriver>[2] = []) {
  const image = new BlockNode('img', new NullDriver('null-co', { size: 1 << 20 }, 'null-co://'), [], false, false);
  return new BlkdebugDriver(image.asChild(), inject, states, () => 'blkdebug::null-co://');
}

const errnoOf = (action: () => void): number | null => {
  try {
    action();
    return null;
  } catch (error) {
    return error instanceof BlockIoError ? error.errno : -1;
  }
};

describe('blkdebug rules', () => {
  const data = Buffer.alloc(512);

  it('fails the request after the event, once when asked, with the given errno', () => {
    const driver = blkdebug([{ event: 'pwritev', iotype: 'write', errno: 28, once: true }]);
    expect(errnoOf(() => driver.read(0, 512))).toBeNull();
    expect(errnoOf(() => driver.write(0, data))).toBe(28);
    expect(errnoOf(() => driver.write(0, data))).toBeNull();
  });

  it('without once the rule stays active; without iotype it hits reads too', () => {
    const driver = blkdebug([{ event: 'pwritev' }]);
    expect(errnoOf(() => driver.read(0, 512))).toBeNull();
    expect(errnoOf(() => driver.write(0, data))).toBe(5);
    expect(errnoOf(() => driver.read(0, 512))).toBe(5);
  });

  it('a sector rule fails only requests covering that sector', () => {
    const driver = blkdebug([{ event: 'pwritev', iotype: 'write', sector: 8 }]);
    expect(errnoOf(() => driver.write(0, data))).toBeNull();
    expect(errnoOf(() => driver.write(4096, data))).toBe(5);
  });

  it('set-state moves the state after the event, gating rules of other states', () => {
    const driver = blkdebug([{ event: 'pwritev', state: 2 }], [{ event: 'pwritev', state: 1, new_state: 2 }]);
    expect(errnoOf(() => driver.write(0, data))).toBeNull();
    expect(errnoOf(() => driver.write(0, data))).toBe(5);
  });

  it('the none event fires once, at open', () => {
    const driver = blkdebug([{ event: 'none', iotype: 'read', once: true }]);
    expect(errnoOf(() => driver.read(0, 512))).toBe(5);
    expect(errnoOf(() => driver.read(0, 512))).toBeNull();
  });
});

describe('new qcow2 image', () => {
  it.each([64 << 20, 2 ** 40, 16 * 2 ** 40])('opens empty at %d bytes and takes data', (size) => {
    const store = new MemoryByteStore(defaultQcow2Image(BigInt(size)));
    const image = Qcow2Image.open(store);
    expect(image.virtualSize).toBe(size);
    expect([...allocatedRuns(image, 0, size)]).toEqual([]);
    image.write(size - (1 << 20), Buffer.alloc(1 << 20, 7));
    expect(image.read(size - 512, 512).every((byte) => byte === 7)).toBe(true);
    expect([...allocatedRuns(image, 0, size)]).toEqual([[size - (1 << 20), size]]);
  });
});
