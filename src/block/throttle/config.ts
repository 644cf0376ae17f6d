import { QmpError } from '../../qmp/errors.ts';
import { qdictKeyOrder } from '../../qmp/qdict-order.ts';
import type { ThrottleGroupProperties, ThrottleLimits } from '../../schema/generated/qapi-types.ts';

/** The six leaky buckets of a throttle group, in the order QEMU checks them. */
export const BUCKETS = ['bps-total', 'bps-read', 'bps-write', 'iops-total', 'iops-read', 'iops-write'] as const;
export type BucketName = (typeof BUCKETS)[number];

/** Which buckets a request passes through, and what it counts in them (bytes or operations). */
export const BUCKET_RULES: Record<BucketName, { unit: 'bytes' | 'operations'; direction: 'any' | 'read' | 'write' }> = {
  'bps-total': { unit: 'bytes', direction: 'any' },
  'bps-read': { unit: 'bytes', direction: 'read' },
  'bps-write': { unit: 'bytes', direction: 'write' },
  'iops-total': { unit: 'operations', direction: 'any' },
  'iops-read': { unit: 'operations', direction: 'read' },
  'iops-write': { unit: 'operations', direction: 'write' },
};

export interface BucketLimit {
  /** Sustained rate per second; 0 means no limit. */
  avg: number;
  /** Burst rate per second; 0 means no burst allowance beyond avg/10. */
  max: number;
  /** Seconds a burst at `max` may last. */
  burstLength: number;
}

export interface ThrottleConfig {
  buckets: Record<BucketName, BucketLimit>;
  /** iops-size: requests larger than this count as several operations. */
  opSize: number;
}

/** QEMU's THROTTLE_VALUE_MAX. */
const VALUE_MAX = 1_000_000_000_000_000;
const UINT_MAX = 4_294_967_295;

export function unlimitedConfig(): ThrottleConfig {
  const buckets = Object.fromEntries(BUCKETS.map((name) => [name, { avg: 0, max: 0, burstLength: 1 }])) as Record<BucketName, BucketLimit>;
  return { buckets, opSize: 0 };
}

/** QEMU stores these values unsigned: a negative one becomes a huge one, caught by the range checks. */
const unsigned64 = (value: number | bigint) => Number(BigInt.asUintN(64, BigInt(value)));

/**
 * The `limits` property (QEMU's throttle_limits_to_config): given members replace the
 * config's, burst lengths checked against 32 bits on the way.
 */
function applyLimits(config: ThrottleConfig, limits: ThrottleLimits, nameOf: (member: string) => string, rangeText: string): void {
  for (const bucket of BUCKETS) {
    const target = config.buckets[bucket];
    const avg = limits[bucket];
    const max = limits[`${bucket}-max`];
    const length = limits[`${bucket}-max-length`];
    if (avg !== undefined) target.avg = unsigned64(avg);
    if (max !== undefined) target.max = unsigned64(max);
    if (length !== undefined) {
      if (BigInt(length) > BigInt(UINT_MAX)) throw new QmpError(`${nameOf(`${bucket}-max-length`)} value must be in ${rangeText} [0, ${UINT_MAX}]`);
      target.burstLength = Number(BigInt.asUintN(32, BigInt(length)));
    }
  }
  if (limits['iops-size'] !== undefined) config.opSize = unsigned64(limits['iops-size']);
}

/** QEMU's throttle_is_valid: its checks and texts, in its order. */
export function checkConfig(config: ThrottleConfig): void {
  const { buckets } = config;
  const mixes = (field: 'avg' | 'max', kind: 'bps' | 'iops') =>
    buckets[`${kind}-total`][field] !== 0 && (buckets[`${kind}-read`][field] !== 0 || buckets[`${kind}-write`][field] !== 0);
  if (mixes('avg', 'bps') || mixes('avg', 'iops') || mixes('max', 'bps') || mixes('max', 'iops')) {
    throw new QmpError('bps/iops/max total values and read/write values cannot be used at the same time');
  }
  if (config.opSize !== 0 && !buckets['iops-total'].avg && !buckets['iops-read'].avg && !buckets['iops-write'].avg) {
    throw new QmpError('iops size requires an iops value to be set');
  }
  for (const bucket of BUCKETS) {
    const { avg, max, burstLength } = buckets[bucket];
    const problem = BUCKET_CHECKS.find((check) => check.fails(avg, max, burstLength));
    if (problem) throw new QmpError(problem.message);
  }
}

const BUCKET_CHECKS: Array<{ fails: (avg: number, max: number, burstLength: number) => boolean; message: string }> = [
  { fails: (avg, max) => avg > VALUE_MAX || max > VALUE_MAX, message: `bps/iops/max values must be within [0, ${VALUE_MAX}]` },
  { fails: (_avg, _max, burstLength) => burstLength === 0, message: 'the burst length cannot be 0' },
  { fails: (_avg, max, burstLength) => burstLength > 1 && max === 0, message: 'burst length set without burst rate' },
  { fails: (avg, max) => max !== 0 && avg === 0, message: 'bps_max/iops_max require corresponding bps/iops values' },
  { fails: (avg, max) => max !== 0 && max < avg, message: 'bps_max/iops_max cannot be lower than bps/iops' },
];

/**
 * object-add's properties of a throttle-group, set as QEMU's property setters do, one
 * by one in QDict order: `limits` converted and checked with what is set so far, each
 * legacy `x-` property on its own (no negative values). The caller checks the whole
 * config when it completes the object (after the id is taken).
 */
export function configFromProperties(properties: ThrottleGroupProperties): ThrottleConfig {
  const config = unlimitedConfig();
  const members = properties as Record<string, unknown>;
  // QOM sets the properties in the order of the QDict object-add builds of them.
  for (const name of qdictKeyOrder(Object.keys(members))) {
    const value = members[name];
    if (name === 'limits' && properties.limits) {
      applyLimits(config, properties.limits, (member) => member, 'the range');
      checkConfig(config);
      continue;
    }
    if (!name.startsWith('x-') || (typeof value !== 'number' && typeof value !== 'bigint')) continue;
    if (value < 0) throw new QmpError('Property values cannot be negative');
    applyLimits(config, { [name.slice(2)]: value }, (member) => `x-${member}`, 'therange');
  }
  return config;
}
