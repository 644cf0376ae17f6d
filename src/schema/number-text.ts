const SIZE_SUFFIXES: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50, e: 2 ** 60 };

/**
 * qemu_strtosz: a decimal (fractions only with a unit) or hexadecimal number with an optional
 * binary unit (b, k, M, G, T, P, E). 'invalid' for text it cannot read, 'range' for 2^64 and beyond.
 */
export function parseSize(text: string): bigint | 'invalid' | 'range' {
  const match = /^\s*(0[xX][0-9a-fA-F]+|[0-9]+(?:\.[0-9]+)?)([bkmgtpeBKMGTPE]?)$/.exec(text);
  if (!match) return 'invalid';
  const [, digits, suffix] = match as unknown as [string, string, string];
  if (digits.includes('.') && suffix === '') return 'invalid';
  const multiplier = SIZE_SUFFIXES[suffix.toLowerCase()]!;
  if (/^0x/i.test(digits)) {
    const value = BigInt(digits) * BigInt(multiplier);
    return value >= 2n ** 64n ? 'range' : value;
  }
  const value = Number(digits) * multiplier;
  if (!Number.isFinite(value) || value >= 2 ** 64) return 'range';
  return BigInt(Math.round(value));
}

/** A C integer as qemu_strtoi64 reads it with base 0: decimal, 0x hexadecimal or 0 octal, signed. */
export function parseInteger(text: string): bigint | null {
  const match = /^\s*([+-]?)(0x[0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(text);
  if (!match) return null;
  const digits = match[2]!;
  const magnitude = digits.startsWith('0x') ? BigInt(digits) : digits.length > 1 && digits.startsWith('0') ? BigInt('0o' + digits.slice(1)) : BigInt(digits);
  return match[1] === '-' ? -magnitude : magnitude;
}
