import fs from 'node:fs';
import { hostErrorText } from '../errno.ts';
import { QmpError } from '../qmp/errors.ts';
import { backingFormat, parseHeader, resolveBackingFilename } from './drivers/qcow2/header.ts';
import { parseSize } from '../schema/number-text.ts';

const QCOW2_MAGIC = Buffer.from([0x51, 0x46, 0x49, 0xfb]);

/** -drive keys that belong to the device or to QEMU's legacy spelling, not to BlockdevOptions. */
const DRIVE_ONLY_KEYS = new Set(['id', 'if', 'file', 'format', 'readonly', 'read-only', 'media', 'index', 'bus', 'unit', 'cache', 'aio']);
const MEDIA = new Set(['disk', 'cdrom']);

/** -drive cache=MODE as QEMU spells it out for the node: [cache.direct, cache.no-flush]. */
const CACHE_MODES: Record<string, [boolean, boolean]> = {
  writeback: [false, false],
  writethrough: [false, false],
  none: [true, false],
  directsync: [true, false],
  unsafe: [false, true],
};
const AIO_MODES = new Set(['threads', 'native', 'io_uring']);
/** Keyed checks QEMU makes on the -drive values it passes on, with its messages. */
const DRIVE_VALUE_CHECKS: Record<string, { accepted: ReadonlySet<string>; message: (value: string) => string }> = {
  discard: { accepted: new Set(['ignore', 'off', 'unmap', 'on']), message: () => 'Invalid discard option' },
  'detect-zeroes': { accepted: new Set(['off', 'on', 'unmap']), message: (value) => `invalid parameter value: ${value}` },
};

/**
 * Turns flat -drive options into a keyval BlockdevOptions tree, as QEMU's
 * drive_new does: `format` over a `file` protocol node, the format probed
 * when not given (qcow2 by its magic, raw otherwise); cache= and aio= spelled
 * out as the node options they stand for. Where the drive attaches is the machine's business.
 * A -drive naming neither file, driver nor format has no medium (an empty CD-ROM drive):
 * undefined, once its options are checked.
 */
export function driveToBlockdev(options: Record<string, string>): Record<string, unknown> | undefined {
  for (const [key, { accepted, message }] of Object.entries(DRIVE_VALUE_CHECKS)) {
    const value = options[key];
    if (value !== undefined && !accepted.has(value)) throw new QmpError(message(value));
  }
  const cache = options.cache === undefined ? undefined : CACHE_MODES[options.cache];
  if (options.cache !== undefined && !cache) throw new QmpError('invalid cache option');
  if (options.aio !== undefined && !AIO_MODES.has(options.aio)) throw new QmpError('invalid aio option');
  if (options.media !== undefined && !MEDIA.has(options.media)) throw new QmpError(`'${options.media}' invalid media`);
  if (options.file === undefined && options.driver === undefined && options.format === undefined) return undefined;
  const blockdev: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if (!DRIVE_ONLY_KEYS.has(key)) setDotted(blockdev, key, value);
  }
  // A CD-ROM's medium is read-only.
  const readOnly = options.media === 'cdrom' ? 'on' : (options['read-only'] ?? options.readonly);
  if (readOnly !== undefined) blockdev['read-only'] = readOnly;
  if (options.file !== undefined) {
    const format = options.format ?? probeFormat(options.file);
    const protocol: Record<string, unknown> = { driver: 'file', filename: options.file };
    if (readOnly !== undefined) protocol['read-only'] = readOnly;
    if (options.aio !== undefined) protocol.aio = options.aio;
    if (cache) protocol.cache = cacheOptions(cache);
    blockdev.driver = format;
    blockdev.file = protocol;
  } else if (options.format !== undefined && blockdev.driver === undefined) {
    blockdev.driver = options.format;
  }
  if (blockdev.driver === undefined) throw new QmpError("Parameter 'driver' is missing");
  if (cache) blockdev.cache = cacheOptions(cache);
  if (options.file !== undefined) completeBackingOptions(blockdev, options.file);
  return blockdev;
}

/** The most of cluster 0 an image can have (2 MiB clusters). */
const MAX_HEADER_CLUSTER = 2 * 1024 * 1024;

/**
 * `backing.node-name=...` and other dotted backing options leave the rest to the
 * image: the backing file and format its header names fill in what is not given.
 */
function completeBackingOptions(blockdev: Record<string, unknown>, path: string): void {
  const backing = blockdev.backing;
  if (blockdev.driver !== 'qcow2' || typeof backing !== 'object' || backing === null) return;
  const named = imageBackingFile(path);
  if (!named) return;
  const given = backing as Record<string, unknown>;
  const file = typeof given.file === 'object' && given.file !== null ? (given.file as Record<string, unknown>) : {};
  given.driver ??= named.format ?? probeFormat(named.filename);
  if (given.file === undefined || typeof given.file === 'object') given.file = { driver: 'file', filename: named.filename, ...file };
}

/** The backing file a qcow2 image's header names, resolved against the image's directory; undefined when it names none or cannot be read. */
function imageBackingFile(path: string): { filename: string; format: string | undefined } | undefined {
  let header;
  try {
    const cluster0 = Buffer.alloc(MAX_HEADER_CLUSTER);
    const fd = fs.openSync(path, 'r');
    try {
      fs.readSync(fd, cluster0, 0, cluster0.length, 0);
    } finally {
      fs.closeSync(fd);
    }
    header = parseHeader(cluster0, { readOnly: true });
  } catch {
    return undefined;
  }
  if (header.backingFile === '') return undefined;
  return { filename: resolveBackingFilename(path, header.backingFile), format: backingFormat(header) };
}

/** The options QEMU's drivers read from a -drive as QemuOpts sizes (unit suffixes allowed), by driver. */
const DRIVE_SIZE_OPTIONS: Record<string, readonly string[]> = {
  'null-co': ['size'],
  'null-aio': ['size'],
  raw: ['offset', 'size'],
  qcow2: ['cache-size', 'l2-cache-size', 'l2-cache-entry-size', 'refcount-cache-size'],
};

/**
 * A copy of a -drive's option tree whose size options ("1M", "0x100", "1.5k") are plain integers,
 * children first as QEMU opens them; QEMU's refusal for a size it cannot read. The tree itself
 * keeps the text: json: filenames show it as typed.
 */
export function driveSizesAsIntegers(options: Record<string, unknown>): Record<string, unknown> {
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    copy[key] = typeof value === 'object' && value !== null ? driveSizesAsIntegers(value as Record<string, unknown>) : value;
  }
  for (const key of DRIVE_SIZE_OPTIONS[String(options.driver)] ?? []) {
    const text = copy[key];
    if (typeof text !== 'string') continue;
    const size = parseSize(text);
    if (size === 'invalid') {
      throw new QmpError(
        `Parameter '${key}' expects a non-negative number below 2^64\nOptional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\nand exabytes, respectively.`,
      );
    }
    if (size === 'range') throw new QmpError(`Value '${text}' is out of range for parameter '${key}'`);
    copy[key] = String(size);
  }
  return copy;
}

/** cache=writethrough and directsync make the BlockBackend flush after every write. */
export function isWritethroughDrive(options: Record<string, string>): boolean {
  return options.cache === 'writethrough' || options.cache === 'directsync';
}

function cacheOptions([direct, noFlush]: [boolean, boolean]): Record<string, string> {
  return { direct: direct ? 'on' : 'off', 'no-flush': noFlush ? 'on' : 'off' };
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
    throw new QmpError(`Could not open '${path}': ${hostErrorText(error)}`);
  }
}
