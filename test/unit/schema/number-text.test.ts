import { describe, expect, it } from 'vitest';
import { parseSize } from '../../../src/schema/number-text.ts';

describe('parseSize (qemu_strtosz)', () => {
  it('reads units, fractions with a unit, and hexadecimal', () => {
    expect(parseSize('1M')).toBe(1048576n);
    expect(parseSize('1.5k')).toBe(1536n);
    expect(parseSize('0x100')).toBe(256n);
    expect(parseSize('512')).toBe(512n);
    expect(parseSize('2b')).toBe(2n);
  });

  it('refuses what QEMU refuses: negatives, a fraction without a unit, unknown units; 2^64 and beyond are out of range', () => {
    for (const text of ['-1', '1.5', '4x', '', 'k']) expect([text, parseSize(text)]).toEqual([text, 'invalid']);
    expect(parseSize('16E')).toBe('range');
    expect(parseSize('0x10000000000000000')).toBe('range');
  });
});
