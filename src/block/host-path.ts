import { MODIFIED_UTF8_NUL } from '../c-text.ts';

/**
 * A file name as QEMU hands it to the host: QEMU keeps strings in modified
 * UTF-8, so a U+0000 in a name is the two bytes C0 80, not the end of the name
 * (blockdev-create makes a file with those bytes in its name; an open looks for one).
 */
export function hostPath(name: string): string | Buffer {
  if (!name.includes('\0')) return name;
  const parts = name.split('\0').map((part) => Buffer.from(part, 'utf8'));
  return Buffer.concat(parts.flatMap((part, index) => (index === 0 ? [part] : [MODIFIED_UTF8_NUL, part])));
}
