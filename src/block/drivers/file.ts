import fs from 'node:fs';
import { QmpError } from '../../qmp/errors.ts';
import { hostErrorText } from '../../errno.ts';
import { FileByteStore, type ByteStore } from './byte-store.ts';
import { runToEnd, type CoroutineSteps } from '../coroutine-steps.ts';
import type { BlockDriver, HostLock, HostLockMode } from './driver.ts';
import type { ImageInfo } from '../../schema/generated/qapi-types.ts';
import { hostPath } from '../host-path.ts';

/**
 * Who uses each host file (by real path) within this daemon, and how. Both
 * kinds of user refuse to share writing, as QEMU's format nodes do: a writer
 * excludes every other user, a reader excludes writers.
 */
const hostFileUsers = new Map<string, Array<{ driver: FileDriver; mode: HostLockMode }>>();

const SECTOR = 512;

/** The `file` protocol driver: guest bytes are the bytes of a host file. */
export class FileDriver implements BlockDriver {
  readonly format = 'file';
  /** QEMU's file driver answers bdrv_get_info, without a cluster size: a backup into it gets no warning. */
  readonly clusterSize = 0;
  readonly byteStore: ByteStore;
  /** The resolved path's bytes (latin1): the key of the host file's users. */
  private readonly realPath: string;

  constructor(
    readonly filename: string,
    readOnly: boolean,
  ) {
    let store: ByteStore;
    try {
      // Anything but a regular file or a directory is refused before opening: a FIFO opened for reading would block.
      if (isSpecialFile(filename)) throw notRegular(filename);
      this.realPath = fs.realpathSync.native(hostPath(filename), 'buffer').toString('latin1');
      store = FileByteStore.open(filename, { readOnly });
    } catch (error) {
      throw error instanceof QmpError ? error : openError(filename, error);
    }
    if (!fs.statSync(hostPath(filename)).isFile()) {
      store.close();
      throw notRegular(filename);
    }
    this.byteStore = store;
  }

  /**
   * As in QEMU, opening a file locks nothing: each parent that reads or writes
   * through the node (a format node, a device) claims the file when it attaches,
   * so a second, idle file node on an image is allowed and a second user is not.
   * QEMU's lock error texts; other processes are not seen (see README).
   */
  readonly hostLock: HostLock = {
    claim: (mode) => {
      const users = hostFileUsers.get(this.realPath) ?? [];
      const others = users.filter((user) => user.driver !== this);
      if (mode === 'write' && others.length > 0) throw new QmpError('Failed to get "write" lock');
      if (mode === 'read' && others.some((user) => user.mode === 'write')) throw new QmpError('Failed to get shared "write" lock');
      users.push({ driver: this, mode });
      hostFileUsers.set(this.realPath, users);
    },
    release: (mode) => {
      const users = hostFileUsers.get(this.realPath) ?? [];
      const index = users.findIndex((user) => user.driver === this && user.mode === mode);
      if (index >= 0) users.splice(index, 1);
      if (users.length === 0) hostFileUsers.delete(this.realPath);
    },
  };

  /** Whole sectors, as QEMU reports a file's length: the last partial sector counts. */
  size(): number {
    return Math.ceil(this.byteStore.size() / SECTOR) * SECTOR;
  }

  read(offset: number, length: number): Buffer {
    const buffer = Buffer.allocUnsafe(length);
    return zeroedPast(buffer, this.byteStore.pread(buffer, offset));
  }

  readInto(offset: number, into: Buffer): Promise<void> {
    return this.byteStore.preadAsync(into, offset).then((bytesRead) => {
      zeroedPast(into, bytesRead);
    });
  }

  write(offset: number, data: Buffer): void {
    this.byteStore.pwrite(data, offset);
  }

  writeZeroes(offset: number, length: number): void {
    this.byteStore.pwrite(Buffer.alloc(length), offset);
  }

  discard(): void {}

  reopen(readOnly: boolean): void {
    this.byteStore.setReadOnly?.(readOnly);
  }

  /** The host file is truncated or extended to exactly the new size. */
  resize(size: number): void {
    this.byteStore.truncate(size);
  }

  flush(): void {
    this.byteStore.flush();
  }

  close(): void {
    this.byteStore.close();
    const others = (hostFileUsers.get(this.realPath) ?? []).filter((user) => user.driver !== this);
    if (others.length > 0) hostFileUsers.set(this.realPath, others);
    else hostFileUsers.delete(this.realPath);
  }

  /** QEMU counts a node's length in 512-byte sectors, so a file's reported size is rounded up to one. */
  imageInfo(): ImageInfo {
    return {
      'virtual-size': Math.ceil(this.size() / 512) * 512,
      filename: this.filename,
      format: 'file',
      'actual-size': allocatedBytes(this.filename),
      'dirty-flag': false,
    };
  }
}

function isSpecialFile(filename: string): boolean {
  try {
    const stat = fs.statSync(hostPath(filename));
    return !stat.isFile() && !stat.isDirectory();
  } catch {
    return false;
  }
}

function notRegular(filename: string): QmpError {
  return new QmpError(`'file' driver requires '${filename}' to be a regular file`);
}

export function allocatedBytes(path: string): number {
  try {
    return fs.statSync(hostPath(path)).blocks * 512;
  } catch {
    return 0;
  }
}

function openError(filename: string, error: unknown): QmpError {
  return new QmpError(`Could not open '${filename}': ${hostErrorText(error)}`);
}

/** Past the end of the file reads as zeroes (the last partial sector). */
function zeroedPast(buffer: Buffer, bytesRead: number): Buffer {
  return bytesRead < buffer.length ? buffer.fill(0, bytesRead) : buffer;
}

export type FilePreallocation = 'off' | 'metadata' | 'falloc' | 'full';

const UINT32_MAX = 2n ** 32n - 1n;
const INT64_MAX = 2n ** 63n - 1n;
const ZERO_CHUNK = 1 << 20;

/**
 * The file driver's image creation (blockdev-create, and the protocol layer
 * of every image qblockd creates): the file is created if missing, locked,
 * emptied, then grown to `size`. `falloc` leaves the file sparse (the bytes
 * read the same); `nocow` and the extent size hint change nothing on the
 * file systems qblockd runs on, as in QEMU outside btrfs and XFS.
 */
export function createFile(filename: string, size: bigint, options: FileCreateOptions = {}): void {
  runToEnd(fileCreation(filename, size, options));
}

export interface FileCreateOptions {
  preallocation?: FilePreallocation;
  extentSizeHint?: bigint;
}

/**
 * createFile as blockdev-create's coroutine runs it: the checks, the creation
 * and the lock happen at once; QEMU empties and grows the file in its thread
 * pool, so everything from there on (preallocation and size errors included)
 * comes after a yield.
 */
export function* fileCreation(filename: string, size: bigint, options: FileCreateOptions = {}): CoroutineSteps {
  if (options.extentSizeHint !== undefined && options.extentSizeHint > UINT32_MAX) throw new QmpError('Extent size hint is too large');
  try {
    fs.closeSync(fs.openSync(hostPath(filename), fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644));
  } catch (error) {
    throw new QmpError(`Could not create '${filename}': ${hostErrorText(error)}`);
  }
  const driver = new FileDriver(filename, false);
  try {
    driver.hostLock.claim('write');
    try {
      yield;
      driver.byteStore.truncate(0);
      growFile(driver.byteStore, size, options.preallocation ?? 'off');
      driver.byteStore.flush();
    } finally {
      driver.hostLock.release('write');
    }
  } finally {
    driver.close();
  }
}

function growFile(store: ByteStore, size: bigint, preallocation: FilePreallocation): void {
  if (preallocation === 'metadata') throw new QmpError('Unsupported preallocation mode: metadata');
  // The QAPI size is unsigned; QEMU hands it to ftruncate as a signed offset.
  if (size > INT64_MAX) throw new QmpError('Could not resize file: Invalid argument');
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new QmpError('Could not resize file: File too large');
  const length = Number(size);
  try {
    if (preallocation === 'full') {
      const zeroes = Buffer.alloc(Math.min(ZERO_CHUNK, length));
      for (let at = 0; at < length; at += zeroes.length) store.pwrite(zeroes.subarray(0, Math.min(zeroes.length, length - at)), at);
    } else {
      store.truncate(length);
      // QEMU writes zeroes over the first block (a sector for a file under 4 KiB) so that
      // alignment probing finds it allocated: the new file's actual-size is one block.
      if (preallocation === 'off' && length > 0) store.pwrite(Buffer.alloc(Math.min(length, length < 4096 ? 512 : 4096)), 0);
    }
  } catch (error) {
    throw new QmpError(`Could not resize file: ${hostErrorText(error)}`);
  }
}
