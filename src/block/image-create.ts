import fs from 'node:fs';
import { QmpError } from '../qmp/errors.ts';
import type { BlockdevDriver } from '../schema/generated/qapi-types.ts';
import { emptyQcow2Image, type BackingFileName } from './drivers/qcow2/create.ts';

/** The formats qblockd can create an image in, as bdrv_img_create does for drive-backup and snapshots. */
const CREATORS: Partial<Record<BlockdevDriver, (fd: number, size: number, backing?: BackingFileName) => void>> = {
  raw: (fd, size) => fs.ftruncateSync(fd, size),
  file: (fd, size) => fs.ftruncateSync(fd, size),
  qcow2: (fd, size, backing) => fs.writeSync(fd, emptyQcow2Image(size, backing), 0, undefined, 0),
};

/** Formats whose images can name a backing file. */
const TAKES_BACKING: ReadonlySet<string> = new Set(['qcow2']);

/** Drivers that never create images (no file of their own). */
const NO_CREATION: ReadonlySet<string> = new Set(['null-co', 'null-aio', 'blkdebug', 'copy-before-write', 'snapshot-access']);

/** Creates (or replaces) the image file `path` of `size` bytes in `format`, naming `backing` where given, with QEMU's errors. */
export function createImage(path: string, format: string, size: number, isKnownFormat: (format: string) => boolean, backing?: BackingFileName): void {
  if (!isKnownFormat(format)) throw new QmpError(`Unknown file format '${format}'`);
  if (NO_CREATION.has(format)) throw new QmpError(`Format driver '${format}' does not support image creation`);
  const create = CREATORS[format as BlockdevDriver];
  if (!create) throw new QmpError(`Driver '${format}' is not supported by qblockd`);
  if (backing && !TAKES_BACKING.has(format)) throw new QmpError(`Backing file not supported for file format '${format}'`);
  let fd: number;
  try {
    fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_TRUNC, 0o644);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new QmpError(`Could not create '${path}': ${code === 'ENOENT' ? 'No such file or directory' : (error as Error).message}`);
  }
  try {
    create(fd, size, backing);
  } finally {
    fs.closeSync(fd);
  }
}
