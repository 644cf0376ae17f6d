import { readSize, type SizeText } from '../schema/number-text.ts';

const INT64_MAX = 2n ** 63n - 1n;

/** A size the monitor and qemu-io read (qemu_strtosz at the start of `text`); both refuse anything above INT64_MAX. null for what they refuse. */
export function monitorSize(text: string, defaultUnit: 'b' | 'm'): SizeText | null {
  const size = readSize(text, defaultUnit);
  return typeof size === 'string' || size.value > INT64_MAX ? null : size;
}
