import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LAZY_IMAGES, runLazyCase } from '../support/qcow2-lazy-images.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-lazy-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const DIRTY = 1n;
const CORRUPT = 2n;

/** Version and incompatible features from the header (the file may be a sparse terabyte). */
function headerFields(file: string): { version: number; incompatible: bigint } {
  const header = Buffer.alloc(80);
  const fd = fs.openSync(file, 'r');
  fs.readSync(fd, header, 0, 80, 0);
  fs.closeSync(fd);
  return { version: header.readUInt32BE(4), incompatible: header.readBigUInt64BE(72) };
}

describe('hostile qcow2 images QEMU 7.2 opens: every reply and event as QEMU 7.2 gave them', () => {
  it.each(LAZY_IMAGES.map((testCase) => [testCase.name, testCase.fuzzCases.join(', ') || '-', testCase] as const))('%s (fuzz cases: %s)', async (_name, _fuzz, testCase) => {
    const { lines, file } = await runLazyCase(testCase, dir);
    expect(lines).toEqual(testCase.qemuLines);
    // A fatal corruption marks the image corrupt on disk; QEMU's repair on open clears the dirty bit.
    const fatal = lines.some((line) => line.includes('"BLOCK_IMAGE_CORRUPTED"') && line.includes('"fatal": true'));
    const { version, incompatible } = headerFields(file);
    if (version === 3 && lines[0] === '{"return": {}}') {
      expect(incompatible & CORRUPT).toBe(fatal ? CORRUPT : 0n);
      expect(incompatible & DIRTY).toBe(0n);
    }
  });
});
