import fs from 'node:fs';
import { QmpError } from '../qmp/errors.ts';

const QCOW2_MAGIC = Buffer.from([0x51, 0x46, 0x49, 0xfb]);

/** -drive keys that belong to the device or to QEMU's legacy spelling, not to BlockdevOptions. */
const DRIVE_ONLY_KEYS = new Set(['id', 'if', 'file', 'format', 'readonly', 'read-only', 'media', 'index']);

/**
 * Turns flat -drive options into a keyval BlockdevOptions tree, as QEMU's
 * drive_new does: `format` over a `file` protocol node, the format probed
 * when not given (qcow2 by its magic, raw otherwise).
 */
export function driveToBlockdev(options: Record<string, string>): { id: string; blockdev: Record<string, unknown> } {
  const id = options.id;
  if (!id) throw new QmpError("-drive: parameter 'id' is required with if=none");
  if ((options.if ?? 'ide') !== 'none') throw new QmpError(`-drive: machine type does not support if=${options.if ?? 'ide'}`);
  const blockdev: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if (!DRIVE_ONLY_KEYS.has(key)) setDotted(blockdev, key, value);
  }
  const readOnly = options['read-only'] ?? options.readonly;
  if (readOnly !== undefined) blockdev['read-only'] = readOnly;
  if (options.file !== undefined) {
    const format = options.format ?? probeFormat(options.file);
    const protocol: Record<string, unknown> = { driver: 'file', filename: options.file };
    if (readOnly !== undefined) protocol['read-only'] = readOnly;
    blockdev.driver = format;
    blockdev.file = protocol;
  } else if (options.format !== undefined && blockdev.driver === undefined) {
    blockdev.driver = options.format;
  }
  if (blockdev.driver === undefined) throw new QmpError("-drive: Parameter 'driver' is missing");
  return { id, blockdev };
}

/** `file.filename=x` becomes `{file: {filename: x}}`, as QEMU's -drive reads dotted keys. */
function setDotted(target: Record<string, unknown>, key: string, value: string): void {
  const path = key.split('.');
  let object = target;
  for (const step of path.slice(0, -1)) {
    const next = object[step];
    object = typeof next === 'object' && next !== null ? (next as Record<string, unknown>) : (object[step] = {});
  }
  object[path[path.length - 1]!] = value;
}

/** QEMU's format probe: qcow2 by its magic, raw otherwise. */
export function probeFormat(path: string): string {
  try {
    const fd = fs.openSync(path, 'r');
    try {
      const magic = Buffer.alloc(4);
      fs.readSync(fd, magic, 0, 4, 0);
      return magic.equals(QCOW2_MAGIC) ? 'qcow2' : 'raw';
    } finally {
      fs.closeSync(fd);
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new QmpError(`Could not open '${path}': ${code === 'ENOENT' ? 'No such file or directory' : (error as Error).message}`);
  }
}
