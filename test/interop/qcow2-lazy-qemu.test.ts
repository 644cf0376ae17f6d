import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { LAZY_IMAGES, runLazyCase } from '../support/qcow2-lazy-images.ts';
import { describeInterop, qemuImgCheck } from '../support/qemu.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-lazy-qemu-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Everything past the header cluster (the header's own layout of extensions differs: QEMU adds its feature table). */
function afterHeader(file: string): Buffer {
  const size = fs.statSync(file).size;
  const length = Math.min(size, 1 << 20) - 65536;
  const buffer = Buffer.alloc(Math.max(0, length));
  const fd = fs.openSync(file, 'r');
  fs.readSync(fd, buffer, 0, buffer.length, 65536);
  fs.closeSync(fd);
  return buffer;
}

describeInterop('hostile qcow2 images QEMU opens: the lines recorded from QEMU 7.2, and the images both leave', { qemuSystem: true, qemuImg: true }, () => {
  it.each(LAZY_IMAGES.map((testCase) => [testCase.name, testCase] as const))('%s', async (_name, testCase) => {
    const qemu = await runLazyCase(testCase, dir, 'qemu-system-x86_64');
    expect(qemu.lines).toEqual(testCase.qemuLines);
    if (testCase.imageDiffers) return;
    const qblockd = await runLazyCase(testCase, dir);
    expect(qemuImgCheck(qblockd.file)).toEqual(qemuImgCheck(qemu.file));
    expect(fs.statSync(qblockd.file).size).toBe(fs.statSync(qemu.file).size);
    expect(afterHeader(qblockd.file).equals(afterHeader(qemu.file))).toBe(true);
  });

  it('a dirty image is left clean by the repair on open', async () => {
    for (const testCase of LAZY_IMAGES.filter((candidate) => ['dirty bit', 'dirty bit with leaked clusters'].includes(candidate.name))) {
      const { file } = await runLazyCase(testCase, dir);
      expect(qemuImgCheck(file)).toEqual({ corruptions: 0, leaks: 0, status: 0 });
    }
  });
});
