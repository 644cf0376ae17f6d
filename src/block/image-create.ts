import { QmpError } from '../qmp/errors.ts';
import type {
  BlockdevCreateOptions,
  BlockdevCreateOptionsFile,
  BlockdevCreateOptionsQcow2,
  BlockdevDriver,
} from '../schema/generated/qapi-types.ts';
import { FileByteStore } from './drivers/byte-store.ts';
import type { CoroutineSteps } from './coroutine-steps.ts';
import { createFile, fileCreation } from './drivers/file.ts';
import {
  DEFAULT_CLUSTER_SIZE,
  defaultQcow2Image,
  qcow2CreateProblem,
  qcow2ImageWrites,
  qcow2LateCreateProblem,
  qcow2SizeProblem,
  type ImageWrite,
  type Qcow2CreateRequest,
  type BackingFileName,
  type Qcow2CreateSpec,
} from './drivers/qcow2/create.ts';
import { QCOW2_MAGIC } from './drivers/qcow2/header.ts';
import type { BlockGraph } from './graph.ts';
import type { BlockNode } from './node.ts';
import type { ResizeContext } from './resize.ts';
import { refuse } from './drivers/option-rules.ts';

/**
 * The one image creator: blockdev-create's drivers and drive-backup's new
 * targets (bdrv_img_create) both come here, and QEMU lays out images the same
 * way on both paths.
 */

/** Drivers QEMU 7.2 can create images with and qblockd cannot. */
const CREATABLE_IN_QEMU_ONLY: ReadonlySet<string> = new Set([
  'gluster', 'luks', 'nfs', 'parallels', 'qcow', 'qed', 'rbd', 'ssh', 'vdi', 'vhdx', 'vmdk', 'vpc',
]);

/**
 * What a blockdev-create job runs for `options`, with QEMU's coroutine yields;
 * refuses at once (before any job exists) a driver that cannot create images,
 * as QEMU does.
 */
export function imageCreator(graph: BlockGraph, options: BlockdevCreateOptions, resizeConflict: ResizeContext['conflict']): () => CoroutineSteps {
  if (options.driver === 'file') return () => createFileImage(options);
  if (options.driver === 'qcow2') return () => createQcow2(graph, options, resizeConflict);
  if (CREATABLE_IN_QEMU_ONLY.has(options.driver)) throw new QmpError(`Driver '${options.driver}' is not supported by qblockd`);
  throw new QmpError('Driver does not support blockdev-create');
}

function toBigInt(value: number | bigint): bigint {
  return typeof value === 'bigint' ? value : BigInt(value);
}

function createFileImage(options: BlockdevCreateOptionsFile): CoroutineSteps {
  return fileCreation(options.filename, toBigInt(options.size), {
    preallocation: options.preallocation,
    extentSizeHint: options['extent-size-hint'] === undefined ? undefined : toBigInt(options['extent-size-hint']),
  });
}

/** BlockdevCreateOptionsQcow2 with QEMU's defaults: v3, 64 KiB clusters, 16-bit refcounts, zlib. */
function qcow2Request(options: BlockdevCreateOptionsQcow2): Qcow2CreateRequest {
  const requested = options['cluster-size'] === undefined ? BigInt(DEFAULT_CLUSTER_SIZE) : toBigInt(options['cluster-size']);
  return {
    size: toBigInt(options.size),
    version: options.version === 'v2' ? 2 : 3,
    // A cluster size past 2^32 only has to fail the power-of-two check.
    clusterSize: requested > 2n ** 32n ? 3 : Number(requested),
    refcountBits: options['refcount-bits'] === undefined ? 16 : Number(options['refcount-bits']),
    lazyRefcounts: options['lazy-refcounts'] === true,
    extendedL2: options['extended-l2'] === true,
    compressionType: options['compression-type'] ?? 'zlib',
    backingFile: options['backing-file'],
    backingFormat: options['backing-fmt'],
    dataFileRaw: options['data-file-raw'] === true,
    preallocation: options.preallocation ?? 'off',
    hasDataFile: options['data-file'] !== undefined,
    hasBackingFormat: options['backing-fmt'] !== undefined,
  };
}

/**
 * qcow2_co_create over a node: the option checks, the data file, the
 * permission to write and resize the file node, a size-0 image that must read
 * back as qcow2, then the image at its size; nodes defined in place are
 * closed again afterwards. QEMU's coroutine first yields when it opens a node
 * defined in place, else when it writes the first image: the checks before
 * that fail inside blockdev-create itself.
 */
function* createQcow2(graph: BlockGraph, options: BlockdevCreateOptionsQcow2, resizeConflict: ResizeContext['conflict']): CoroutineSteps {
  const temporary: BlockNode[] = [];
  function* open(reference: BlockdevCreateOptionsQcow2['file']): CoroutineSteps<BlockNode> {
    const { node, opened } = graph.openReference(reference);
    if (opened) {
      temporary.push(node);
      yield;
    }
    return node;
  }
  try {
    const file = yield* open(options.file);
    const request = qcow2Request(options);
    refuse(qcow2CreateProblem(request));
    const dataFile = options['data-file'] === undefined ? undefined : yield* open(options['data-file']);
    refuse(qcow2LateCreateProblem(request));
    for (const node of dataFile ? [file, dataFile] : [file]) {
      if (node.readOnly) throw new QmpError('Block node is read-only');
      refuse(graph.writeResizeConflict(node));
      refuse(resizeConflict(node));
    }
    yield;
    const spec: Qcow2CreateSpec = { ...request, dataFile: dataFile?.driver.imageInfo().filename };
    writeImage(file, qcow2ImageWrites({ ...spec, size: 0n }));
    // QEMU opens the new image as a node of its own, unnamed, which takes the only write permission on its file.
    refuse(graph.deviceWriteConflict(file, graph.generateNodeName()));
    if (file.driver.read(0, 4).readUInt32BE(0) !== QCOW2_MAGIC) throw new QmpError('Image is not in qcow2 format');
    refuse(qcow2SizeProblem(spec));
    // QEMU preallocates as it grows the image to its size, once the empty image reads back.
    if (request.preallocation !== 'off') throw new QmpError(`qcow2 preallocation '${request.preallocation}' is not supported by qblockd`);
    writeImage(file, qcow2ImageWrites(spec));
    dataFile?.driver.byteStore?.truncate(Number(spec.size));
    dataFile?.driver.flush();
    if (options.encrypt) {
      const secret = options.encrypt['key-secret'];
      // qblockd has no secret objects, so every key is missing, as in a QEMU without `object-add secret`.
      throw new QmpError(secret === undefined ? 'Encrypted qcow2 images are not supported by qblockd' : `No secret with id '${secret}'`);
    }
  } finally {
    for (const node of temporary.reverse()) graph.closeImplicit(node);
  }
}

/** Writes through the node, as QEMU's BlockBackend does: its dirty bitmaps see the image's bytes. */
function writeImage(node: BlockNode, writes: ImageWrite[]): void {
  for (const { offset, data } of writes) node.write(offset, data);
  node.flush();
}

/** Formats drive-backup and blockdev-snapshot-sync can create an image in. */
const IMAGE_FILE_CREATORS: Partial<Record<BlockdevDriver, (path: string, size: number, backing?: BackingFileName) => void>> = {
  raw: (path, size) => createFile(path, BigInt(size)),
  file: (path, size) => createFile(path, BigInt(size)),
  qcow2: (path, size, backing) => {
    createFile(path, 0n);
    const store = FileByteStore.open(path, { readOnly: false });
    try {
      // qemu-img create rounds the size up to whole sectors.
      store.pwrite(defaultQcow2Image(BigInt(Math.ceil(size / 512) * 512), backing), 0);
      store.flush();
    } finally {
      store.close();
    }
  },
};

/** Drivers that never create images (no file of their own). */
const NO_CREATION: ReadonlySet<string> = new Set(['null-co', 'null-aio', 'blkdebug', 'copy-before-write', 'snapshot-access', 'throttle']);

/** Formats whose images can name a backing file. */
const TAKES_BACKING: ReadonlySet<string> = new Set(['qcow2']);

/**
 * Creates (or replaces) the image file `path` of `size` bytes in `format`,
 * naming `backing` where given, as bdrv_img_create does for drive-backup and
 * blockdev-snapshot-sync.
 */
export function createImage(image: NewImage, host: ImageCreationHost): void {
  const { path, format, size, backing } = image;
  if (!host.isKnownFormat(format)) throw new QmpError(`Unknown file format '${format}'`);
  if (NO_CREATION.has(format)) throw new QmpError(`Format driver '${format}' does not support image creation`);
  const create = IMAGE_FILE_CREATORS[format as BlockdevDriver];
  if (!create) throw new QmpError(`Driver '${format}' is not supported by qblockd`);
  if (backing && !TAKES_BACKING.has(format)) throw new QmpError(`Backing file not supported for file format '${format}'`);
  host.print(`Formatting '${path}', fmt=${format} ${creationOptions(image)}\n`);
  create(path, size, backing);
}

export interface NewImage {
  path: string;
  format: string;
  size: number;
  backing?: BackingFileName;
}

export interface ImageCreationHost {
  isKnownFormat(format: string): boolean;
  /** Where QEMU's "Formatting ..." line goes: its stdout. */
  print(text: string): void;
}

/** The creation options as bdrv_img_create prints them: QEMU's defaults included, commas in values doubled. */
function creationOptions({ format, size, backing }: NewImage): string {
  if (format !== 'qcow2') return `size=${size}`;
  const named = backing ? ` backing_file=${backing.file.replaceAll(',', ',,')} backing_fmt=${backing.format}` : '';
  return `cluster_size=65536 extended_l2=off compression_type=zlib size=${size}${named} lazy_refcounts=off refcount_bits=16`;
}
