import { afterEach, expect, test, vi } from 'vitest';
import { rehearse } from '../../../src/rehearsal.ts';

afterEach(() => vi.restoreAllMocks());

// The launcher rehearses while it builds its code cache, in front of the real start: anything
// printed there would land in the output of a launch that QEMU's harness compares with QEMU's.
test('the code-cache rehearsal prints nothing (its qemu-io output included)', async () => {
  const written: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    written.push(String(chunk));
    return true;
  });
  await rehearse();
  expect(written).toEqual([]);
});
