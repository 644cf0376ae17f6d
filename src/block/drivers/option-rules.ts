import { QmpError } from '../../qmp/errors.ts';
import type {
  BlockdevOptions,
  BlockdevOptionsFile,
  BlockdevOptionsNull,
  BlockdevOptionsQcow2,
  BlockdevOptionsRaw,
} from '../../schema/generated/qapi-types.ts';

/**
 * The checks QEMU 7.2 makes on option values when it opens a node, as data:
 * each rule returns QEMU's error text or null, and the first text found is
 * the blockdev-add error. Integer members arrive as number or bigint, and
 * uint64 members possibly still negative (C's wrap-around): the helpers below
 * read them as QEMU holds them.
 */
export type OptionRule<Options> = (options: Options, facts: OpenFacts) => string | null;

/** What rules may consult besides the options. */
export interface OpenFacts {
  /** Bytes of the protocol child, as QEMU counts them (whole sectors). */
  childSize?: bigint;
  /** The qcow2 image being opened, for qcow2's own rules. */
  image?: Qcow2ImageFacts;
  /** Whether a reference names a device or node. */
  nodeExists?: (name: string) => boolean;
}

export const SECTOR = 512n;
/** QEMU's BDRV_MAX_LENGTH: the largest node, INT64_MAX rounded down to 1 GiB. */
export const MAX_NODE_LENGTH = 2n ** 63n - 2n ** 30n;
const INT64_MAX = 2n ** 63n - 1n;

export function integer(value: number | bigint | undefined): bigint | undefined {
  return value === undefined ? undefined : BigInt(value);
}

function uint64(value: number | bigint | undefined): bigint | undefined {
  const big = integer(value);
  return big !== undefined && big < 0n ? big + 2n ** 64n : big;
}

export function roundUpToSector(length: bigint): bigint {
  return ((length + SECTOR - 1n) / SECTOR) * SECTOR;
}

/** QemuOpts' size parser refuses what does not fit a uint64 with this text. */
function sizeParameter(name: string, value: number | bigint | undefined): string | null {
  const big = integer(value);
  return big !== undefined && big < 0n ? `Parameter '${name}' expects a non-negative number below 2^64` : null;
}

/**
 * Checks on the members every driver shares, made before the driver sees
 * its own options. Implicit children inherit `discard: unmap`.
 */
export const COMMON_RULES: Array<OptionRule<BlockdevOptions>> = [
  (options) => (options['force-share'] && !options['read-only'] ? 'force-share=on can only be used with read-only images' : null),
  detectZeroesRule,
];

/** Also checked on blockdev-reopen, where detect-zeroes may change. */
export function detectZeroesRule(options: BlockdevOptions): string | null {
  return options['detect-zeroes'] === 'unmap' && options.discard !== 'unmap'
    ? 'setting detect-zeroes to unmap is not allowed without setting discard operation to unmap'
    : null;
}

/**
 * null-co / null-aio. QEMU 7.2 aborts on a negative size (its option parser's
 * error becomes fatal there); qblockd answers with that parser's text instead.
 */
export const NULL_RULES: Array<OptionRule<BlockdevOptionsNull>> = [
  (options) => sizeParameter('size', options.size),
  (options) => ((uint64(options['latency-ns']) ?? 0n) > INT64_MAX ? 'latency-ns is invalid' : null),
  (options) => ((integer(options.size) ?? 0n) > MAX_NODE_LENGTH ? 'Could not refresh total sector count: File too large' : null),
];

/** raw's window onto its child; `childSize` is known because the child is opened first. */
export const RAW_RULES: Array<OptionRule<BlockdevOptionsRaw>> = [
  (options) => sizeParameter('offset', options.offset),
  (options) => sizeParameter('size', options.size),
  (options, { childSize = 0n }) => {
    const offset = integer(options.offset) ?? 0n;
    return offset > childSize ? `Offset (${offset}) cannot be greater than size of the containing file (${childSize})` : null;
  },
  (options, { childSize = 0n }) => {
    const offset = integer(options.offset) ?? 0n;
    const size = integer(options.size);
    return size !== undefined && childSize - offset < size
      ? `The sum of offset (${offset}) and size (${size}) has to be smaller or equal to the  actual size of the containing file (${childSize})`
      : null;
  },
  (options) => {
    const size = integer(options.size);
    return size !== undefined && size % SECTOR !== 0n ? `Specified size is not multiple of ${SECTOR}` : null;
  },
];

/** file, before the host file is opened (what it is can only be checked after). */
export const FILE_RULES: Array<OptionRule<BlockdevOptionsFile & Pick<BlockdevOptions, 'cache'>>> = [
  (options) => (options.filename === '' ? "The 'file' block driver requires a file name" : null),
  (options) =>
    options.aio === 'native' && options.cache?.direct !== true
      ? 'aio=native was specified, but it requires cache.direct=on, which was not specified.'
      : null,
  // qblockd has no persistent reservation managers, so any id names nothing.
  (options) => (options['pr-manager'] !== undefined ? `No persistent reservation manager with id '${options['pr-manager']}'` : null),
];

/** Throws a rule's refusal as QEMU's error; null passes. */
export function refuse(problem: string | null): void {
  if (problem) throw new QmpError(problem);
}

/** The first failing rule's text, or null. */
export function firstProblem<Options>(rules: Array<OptionRule<Options>>, options: Options, facts: OpenFacts = {}): string | null {
  for (const rule of rules) {
    const problem = rule(options, facts);
    if (problem) return problem;
  }
  return null;
}

/** What qcow2's option checks need of the image: QEMU makes them after reading the header and L1 table. */
export interface Qcow2ImageFacts {
  clusterSize: number;
  virtualSize: bigint;
  version: number;
}

const DEFAULT_L2_CACHE_MAX = 32n << 20n;
const INT_MAX = 2n ** 31n - 1n;
const UINT_MAX = 2n ** 32n - 1n;

/** The L2 cache entry size QEMU settles on, before checking it. */
function l2CacheEntrySize(options: BlockdevOptionsQcow2, image: Qcow2ImageFacts): bigint {
  const given = integer(options['l2-cache-entry-size']);
  if (given !== undefined) return given;
  const cluster = BigInt(image.clusterSize);
  return l2CacheBytes(options, image) < maxL2Cache(image) ? (cluster < 4096n ? cluster : 4096n) : cluster;
}

function maxL2Cache(image: Qcow2ImageFacts): bigint {
  const cluster = BigInt(image.clusterSize);
  const entries = (image.virtualSize + cluster - 1n) / cluster;
  return ((entries * 8n + cluster - 1n) / cluster) * cluster;
}

/** L2 cache bytes as read_cache_sizes leaves them (cache-size shared out when only it is given). */
function l2CacheBytes(options: BlockdevOptionsQcow2, image: Qcow2ImageFacts): bigint {
  const max = maxL2Cache(image);
  const setting = integer(options['l2-cache-size']) ?? DEFAULT_L2_CACHE_MAX;
  const l2 = setting < max ? setting : max;
  const combined = integer(options['cache-size']);
  if (combined === undefined || options['l2-cache-size'] !== undefined) return l2;
  const refcount = integer(options['refcount-cache-size']);
  if (refcount !== undefined) return combined - refcount;
  const minRefcount = 4n * BigInt(image.clusterSize);
  return combined >= max + minRefcount ? max : combined - (combined < minRefcount ? combined : minRefcount);
}

function refcountCacheBytes(options: BlockdevOptionsQcow2, image: Qcow2ImageFacts): bigint {
  const combined = integer(options['cache-size']);
  const refcount = integer(options['refcount-cache-size']) ?? 0n;
  if (combined === undefined || options['refcount-cache-size'] !== undefined) return refcount;
  return combined - l2CacheBytes(options, image);
}

/** qcow2's cache and feature options, checked against the opened image (`facts.image`), in QEMU's order, then its data-file child. */
export const QCOW2_RULES: Array<OptionRule<BlockdevOptionsQcow2>> = [
  (options) => sizeParameter('cache-size', options['cache-size']),
  (options) => sizeParameter('l2-cache-size', options['l2-cache-size']),
  (options) => sizeParameter('l2-cache-entry-size', options['l2-cache-entry-size']),
  (options) => sizeParameter('refcount-cache-size', options['refcount-cache-size']),
  (options) => {
    if (options['cache-size'] === undefined) return null;
    const combined = integer(options['cache-size'])!;
    if (options['l2-cache-size'] !== undefined && options['refcount-cache-size'] !== undefined) {
      return 'cache-size, l2-cache-size and refcount-cache-size may not be set at the same time';
    }
    if (options['l2-cache-size'] !== undefined && integer(options['l2-cache-size'])! > combined) return 'l2-cache-size may not exceed cache-size';
    if ((integer(options['refcount-cache-size']) ?? 0n) > combined) return 'refcount-cache-size may not exceed cache-size';
    return null;
  },
  (options, { image }) => {
    const entry = l2CacheEntrySize(options, image!);
    const cluster = BigInt(image!.clusterSize);
    const powerOfTwo = entry > 0n && (entry & (entry - 1n)) === 0n;
    return entry < SECTOR || entry > cluster || !powerOfTwo ? `L2 cache entry size must be a power of two between 512 and the cluster size (${cluster})` : null;
  },
  (options, { image }) => (l2CacheBytes(options, image!) / l2CacheEntrySize(options, image!) > INT_MAX ? 'L2 cache size too big' : null),
  (options, { image }) => (refcountCacheBytes(options, image!) / BigInt(image!.clusterSize) > INT_MAX ? 'Refcount cache size too big' : null),
  (options) => ((uint64(options['cache-clean-interval']) ?? 0n) > UINT_MAX ? 'Cache clean interval too big' : null),
  (options, { image }) =>
    options['lazy-refcounts'] && image!.version < 3 ? 'Lazy refcounts require a qcow2 image with at least qemu 1.1 compatibility level' : null,
  // The data-file child, which qblockd does not attach, once the options above are checked: a
  // reference to no node gets QEMU's lookup error; otherwise QEMU's text for images without one
  // (qblockd refuses images with one).
  (options, { nodeExists }) => {
    const dataFile = options['data-file'];
    if (dataFile === undefined) return null;
    if (typeof dataFile === 'string' && !nodeExists?.(dataFile)) return `Cannot find device='${dataFile}' nor node-name='${dataFile}'`;
    return "'data-file' can only be set for images with an external data file";
  },
];
