import fs from 'node:fs';
import { QmpError } from '../../qmp/errors.ts';
import { FileByteStore, type ByteStore } from './byte-store.ts';
import type { BlockDriver, HostLock, HostLockMode } from './driver.ts';
import type { ImageInfo } from '../../schema/generated/qapi-types.ts';

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
  readonly byteStore: ByteStore;
  private readonly realPath: string;

  constructor(
    readonly filename: string,
    readOnly: boolean,
  ) {
    let store: ByteStore;
    try {
      // Anything but a regular file or a directory is refused before opening: a FIFO opened for reading would block.
      if (isSpecialFile(filename)) throw notRegular(filename);
      this.realPath = fs.realpathSync(filename);
      store = FileByteStore.open(filename, { readOnly });
    } catch (error) {
      throw error instanceof QmpError ? error : openError(filename, error);
    }
    if (!fs.statSync(this.realPath).isFile()) {
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
    const buffer = Buffer.alloc(length);
    this.byteStore.pread(buffer, offset);
    return buffer;
  }

  /** Past the end of the file reads as zeroes. */
  readInto(target: Buffer, offset: number): void {
    target.fill(0, this.byteStore.pread(target, offset));
  }

  write(offset: number, data: Buffer): void {
    this.byteStore.pwrite(data, offset);
  }

  writeZeroes(offset: number, length: number): void {
    this.byteStore.pwrite(Buffer.alloc(length), offset);
  }

  discard(): void {}

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
    const stat = fs.statSync(filename);
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
    return fs.statSync(path).blocks * 512;
  } catch {
    return 0;
  }
}

function openError(filename: string, error: unknown): QmpError {
  const code = (error as NodeJS.ErrnoException).code;
  const reason = ERRNO_TEXT[code ?? ''] ?? (error as Error).message;
  return new QmpError(`Could not open '${filename}': ${reason}`);
}

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  EISDIR: 'Is a directory',
  EROFS: 'Read-only file system',
  ENOTDIR: 'Not a directory',
};
