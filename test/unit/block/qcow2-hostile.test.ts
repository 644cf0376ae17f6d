import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BlockGraph } from '../../../src/block/graph.ts';
import type { BlockdevOptions } from '../../../src/schema/generated/qapi-types.ts';
import { buildImage, HOSTILE_HEADERS, writeHostileImages } from '../../support/qcow2-images.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-hostile-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The image file under qcow2 directly, or under a node between them: qcow2 reads its metadata through any child. */
const UNDER = {
  file: (filename: string) => ({ driver: 'file', filename }),
  raw: (filename: string) => ({ driver: 'raw', file: { driver: 'file', filename } }),
  blkdebug: (filename: string) => ({ driver: 'blkdebug', image: { driver: 'file', filename } }),
} as const;

function openError(file: string, under: keyof typeof UNDER = 'file'): string {
  const graph = new BlockGraph();
  try {
    graph.addBlockdev({ driver: 'qcow2', 'node-name': 'q0', file: UNDER[under](file) } as BlockdevOptions);
  } catch (error) {
    return (error as Error).message;
  }
  // Closed again, so that its image lock lets the next open of the same file in.
  graph.closeAll();
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

  it.each(HOSTILE_HEADERS.flatMap((hostile, index) => (['raw', 'blkdebug'] as const).map((under) => [hostile.name, under, hostile.qemuError, files[index]!] as const)))(
    '%s under a %s node: the same text (the header is read through the child)',
    (_name, under, qemuError, file) => {
      expect(openError(file, under)).toBe(qemuError);
    },
  );

  it('the untouched image opens', () => {
    const file = path.join(dir, 'fresh.qcow2');
    fs.writeFileSync(file, buildImage());
    expect(openError(file)).toBe('opened');
    expect(openError(file, 'raw')).toBe('opened');
    expect(openError(file, 'blkdebug')).toBe('opened');
  });
});
