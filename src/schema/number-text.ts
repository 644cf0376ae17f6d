import { trimStartC } from '../c-text.ts';

const UINT64_LIMIT = 2n ** 64n;
const SIZE_UNITS: Record<string, bigint> = { b: 1n, k: 1n << 10n, m: 1n << 20n, g: 1n << 30n, t: 1n << 40n, p: 1n << 50n, e: 1n << 60n };

export interface SizeText {
  value: bigint;
  /** What follows the size. */
  rest: string;
  /** QEMU warns of a unit on a hexadecimal number (the monitor puts it into its reply). */
  warning?: string;
}

/**
 * QEMU 7.2's qemu_strtosz on the start of `text`: a decimal number (a fraction only with a unit
 * other than bytes) or a `0x` hexadecimal one, then an optional binary unit (b, k, M, G, T, P, E),
 * else `defaultUnit` (bytes; the monitor's sizes are in MiB). 'invalid' for text it cannot read,
 * 'range' for 2^64 and beyond.
 */
export function readSize(text: string, defaultUnit: 'b' | 'm' = 'b'): SizeText | 'invalid' | 'range' {
  const start = trimStartC(text);
  const hex = /^\+?0[xX]([0-9a-fA-F]+)([bkmgtpeBKMGTPE]?)/.exec(start);
  const decimal = hex ? null : /^\+?([0-9]+)(?:\.([0-9]*))?([bkmgtpeBKMGTPE]?)/.exec(start);
  const match = hex ?? decimal;
  if (!match) return 'invalid';
  const unit = hex ? hex[2]! : decimal![3]!;
  const multiplier = SIZE_UNITS[(unit || defaultUnit).toLowerCase()]!;
  const rest = start.slice(match[0].length);
  if (hex) {
    if (rest.startsWith('.')) return 'invalid';
    const value = BigInt(`0x${hex[1]}`) * multiplier;
    if (value >= UINT64_LIMIT) return 'range';
    return unit ? { value, rest, warning: `warning: Using a multiplier suffix on hex numbers is deprecated: ${start}` } : { value, rest };
  }
  const [, whole, fraction] = decimal!;
  if (fraction !== undefined && multiplier === 1n) return 'invalid';
  const fractional = fraction ? BigInt(Math.floor(Number(`0.${fraction}`) * Number(multiplier))) : 0n;
  const value = BigInt(whole!) * multiplier + fractional;
  return value >= UINT64_LIMIT ? 'range' : { value, rest };
}

/** A whole text that is a size (option values): 'invalid' when anything follows it. */
export function parseSize(text: string): bigint | 'invalid' | 'range' {
  const size = readSize(text);
  if (typeof size === 'string') return size;
  return size.rest === '' ? size.value : 'invalid';
}

/** A C integer as qemu_strtoi64 reads it with base 0: decimal, 0x hexadecimal or 0 octal, signed. */
export function parseInteger(text: string): bigint | null {
  const match = /^([+-]?)(0x[0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(trimStartC(text));
  if (!match) return null;
  const digits = match[2]!;
  const magnitude = digits.startsWith('0x') ? BigInt(digits) : digits.length > 1 && digits.startsWith('0') ? BigInt('0o' + digits.slice(1)) : BigInt(digits);
  return match[1] === '-' ? -magnitude : magnitude;
}
