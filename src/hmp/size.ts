const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;
const SUFFIXES: Record<string, bigint> = { b: 1n, k: 1n << 10n, m: 1n << 20n, g: 1n << 30n, t: 1n << 40n, p: 1n << 50n, e: 1n << 60n };

export interface ParsedSize {
  value: bigint;
  /** What follows the size on the line. */
  rest: string;
  /** QEMU warns (into the monitor reply) of a suffix on a hex number. */
  warning?: string;
}

/**
 * QEMU 7.2's qemu_strtosz on the start of `text`: a decimal number (a fraction
 * only with a multiplier other than bytes) or `0x` hex, then an optional binary
 * suffix, else `defaultSuffix` (bytes for qemu-io, MiB for the monitor's sizes).
 * null for what it refuses, including anything above INT64_MAX.
 */
export function parseSizePrefix(text: string, defaultSuffix: 'b' | 'm'): ParsedSize | null {
  const start = text.trimStart();
  const hex = /^\+?0[xX]([0-9a-fA-F]+)([bkmgtpeBKMGTPE]?)/.exec(start);
  const decimal = hex ? null : /^\+?([0-9]+)(?:\.([0-9]*))?([bkmgtpeBKMGTPE]?)/.exec(start);
  const match = hex ?? decimal;
  if (!match) return null;
  const suffix = hex ? hex[2]! : decimal![3]!;
  const multiplier = SUFFIXES[(suffix || defaultSuffix).toLowerCase()]!;
  const rest = start.slice(match[0].length);
  if (hex) {
    if (rest.startsWith('.')) return null;
    const value = BigInt(`0x${hex[1]}`) * multiplier;
    if (value > INT64_MAX) return null;
    return suffix ? { value, rest, warning: `warning: Using a multiplier suffix on hex numbers is deprecated: ${start}` } : { value, rest };
  }
  const [, whole, fraction] = decimal!;
  if (fraction !== undefined && multiplier === 1n) return null;
  const integral = BigInt(whole!);
  if (integral > UINT64_MAX) return null;
  const fractional = fraction ? BigInt(Math.floor(Number(`0.${fraction}`) * Number(multiplier))) : 0n;
  const value = integral * multiplier + fractional;
  return value > INT64_MAX ? null : { value, rest };
}
