import { describe, expect, it } from 'vitest';
import { ThrottleBuckets } from '../../../src/block/throttle/buckets.ts';
import { checkConfig, configFromProperties, unlimitedConfig, type ThrottleConfig } from '../../../src/block/throttle/config.ts';
import type { ThrottleGroupProperties } from '../../../src/schema/generated/qapi-types.ts';

const KiB = 1024;

function config(limits: ThrottleGroupProperties['limits']): ThrottleConfig {
  const made = configFromProperties({ limits });
  checkConfig(made);
  return made;
}

describe('throttle buckets (the leaky-bucket rules, on an injected clock in ms)', () => {
  it('lets a first request through at once, then holds the next until the bucket has drained to avg/10', () => {
    const buckets = new ThrottleBuckets(config({ 'bps-write': 300 * KiB }), 0);
    expect(buckets.admit('write', 512 * KiB, 0)).toBe(0);
    // 512 KiB in the bucket, 30 KiB allowed: (512 - 30) KiB at 300 KiB/s.
    expect(buckets.admit('write', 512 * KiB, 0)).toBeCloseTo(((512 - 30) / 300) * 1000, 6);
  });

  it('drains with time: a request after the bucket emptied goes at once', () => {
    const buckets = new ThrottleBuckets(config({ 'bps-write': 100 * KiB }), 0);
    buckets.admit('write', 100 * KiB, 0);
    expect(buckets.admit('write', 4 * KiB, 1000)).toBe(1000);
  });

  it('limits only the direction its buckets name: reads pass a write limit', () => {
    const buckets = new ThrottleBuckets(config({ 'bps-write': KiB }), 0);
    buckets.admit('write', 64 * KiB, 0);
    expect(buckets.admit('read', 64 * KiB, 0)).toBe(0);
  });

  it('queues requests of one direction behind each other', () => {
    const buckets = new ThrottleBuckets(config({ 'iops-total': 10 }), 0);
    const times = [0, 0, 0, 0].map(() => buckets.admit('write', 512, 0));
    // One operation per 100 ms once the bucket (1 operation) is full.
    expect(times.map((time) => Math.round(time))).toEqual([0, 0, 100, 200]);
  });

  it('counts a request larger than iops-size as several operations', () => {
    const buckets = new ThrottleBuckets(config({ 'iops-total': 10, 'iops-size': 4096 }), 0);
    buckets.admit('read', 4 * 4096, 0);
    // 4 operations in a bucket of 1: 3 over at 10/s.
    expect(buckets.admit('read', 512, 0)).toBeCloseTo(300, 6);
  });

  it('allows max x burst-length at once with a burst limit, and holds a long burst to max/10', () => {
    const buckets = new ThrottleBuckets(config({ 'bps-total': 10 * KiB, 'bps-total-max': 100 * KiB, 'bps-total-max-length': 2 }), 0);
    expect(buckets.admit('write', 50 * KiB, 0)).toBe(0);
    // Main bucket (200 KiB) is not full, the burst bucket (10 KiB) is: 40 KiB over at 100 KiB/s.
    expect(buckets.admit('write', 50 * KiB, 0)).toBeCloseTo(400, 6);
  });

  it('never waits without limits', () => {
    const buckets = new ThrottleBuckets(unlimitedConfig(), 0);
    for (let index = 0; index < 5; index++) expect(buckets.admit('write', 1 << 30, 0)).toBe(0);
  });
});

describe("throttle-group properties (QEMU 7.2's texts)", () => {
  const refused = (properties: ThrottleGroupProperties) => {
    try {
      checkConfig(configFromProperties(properties));
      return null;
    } catch (error) {
      return (error as Error).message;
    }
  };

  it.each<[ThrottleGroupProperties, string | null]>([
    [{ limits: { 'bps-write': -1 } }, 'bps/iops/max values must be within [0, 1000000000000000]'],
    [{ limits: { 'bps-total': 1, 'bps-read': 1 } }, 'bps/iops/max total values and read/write values cannot be used at the same time'],
    [{ limits: { 'iops-size': 5 } }, 'iops size requires an iops value to be set'],
    [{ limits: { 'bps-write': 100, 'bps-write-max': 1000, 'bps-write-max-length': 0 } }, 'the burst length cannot be 0'],
    [{ limits: { 'bps-write': 100, 'bps-write-max-length': 5 } }, 'burst length set without burst rate'],
    [{ limits: { 'bps-write-max': 100 } }, 'bps_max/iops_max require corresponding bps/iops values'],
    [{ limits: { 'bps-write': 100, 'bps-write-max': 10 } }, 'bps_max/iops_max cannot be lower than bps/iops'],
    [{ limits: { 'bps-write-max-length': 4294967296 } }, 'bps-write-max-length value must be in the range [0, 4294967295]'],
    [{ 'x-bps-write-max-length': 4294967296 }, 'x-bps-write-max-length value must be in therange [0, 4294967295]'],
    [{ 'x-bps-write': -1 }, 'Property values cannot be negative'],
    [{ limits: { 'bps-total': 100 }, 'x-bps-write': 7 }, 'bps/iops/max total values and read/write values cannot be used at the same time'],
    [{ limits: { 'bps-write': 10, 'bps-write-max': 100, 'bps-write-max-length': 86401 } }, null],
  ])('%j: %s', (properties, message) => {
    expect(refused(properties)).toBe(message);
  });

  it('lets an x- property replace what limits set', () => {
    expect(configFromProperties({ limits: { 'bps-write': 100 }, 'x-bps-write': 7 }).buckets['bps-write'].avg).toBe(7);
  });
});
