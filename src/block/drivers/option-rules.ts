import type {
  BlockdevOptions,
  BlockdevOptionsFile,
  BlockdevOptionsNull,
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
  (options) =>
    options['detect-zeroes'] === 'unmap' && options.discard !== 'unmap'
      ? 'setting detect-zeroes to unmap is not allowed without setting discard operation to unmap'
      : null,
];

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

/** The first failing rule's text, or null. */
export function firstProblem<Options>(rules: Array<OptionRule<Options>>, options: Options, facts: OpenFacts = {}): string | null {
  for (const rule of rules) {
    const problem = rule(options, facts);
    if (problem) return problem;
  }
  return null;
}
