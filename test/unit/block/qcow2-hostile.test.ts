import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BlockGraph } from '../../../src/block/graph.ts';
import { buildImage, HOSTILE_HEADERS, writeHostileImages } from '../../support/qcow2-images.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-hostile-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function openError(file: string): string {
  try {
    new BlockGraph().addBlockdev({ driver: 'qcow2', 'node-name': 'q0', file: { driver: 'file', filename: file } });
  } catch (error) {
    return (error as Error).message;
  }
  return 'opened';
}

describe('hostile qcow2 headers', () => {
  const files = writeHostileImages(dir);
  it.each(HOSTILE_HEADERS.map((hostile, index) => [hostile.name, hostile.qemuError, files[index]!]))(
    '%s: blockdev-add fails with QEMU 7.2\'s text',
    (_name, qemuError, file) => {
      expect(openError(file)).toBe(qemuError);
    },
  );

  it('the untouched image opens', () => {
    const file = path.join(dir, 'fresh.qcow2');
    fs.writeFileSync(file, buildImage());
    expect(openError(file)).toBe('opened');
  });
});
