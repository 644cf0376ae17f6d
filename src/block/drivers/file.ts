import fs from 'node:fs';
import { QmpError } from '../../qmp/errors.ts';
import { FileByteStore, type ByteStore } from './byte-store.ts';
import type { BlockDriver } from './driver.ts';

/** A host file opened by this daemon, so one image is never opened for writing twice. */
const openForWriting = new Set<string>();

/** The `file` protocol driver: guest bytes are the bytes of a host file. */
export class FileDriver implements BlockDriver {
  readonly format = 'file';
  readonly byteStore: ByteStore;
  private readonly lockKey: string | null;

  constructor(
    readonly filename: string,
    readOnly: boolean,
  ) {
    let realPath: string;
    try {
      realPath = fs.realpathSync(filename);
    } catch (error) {
      throw openError(filename, error);
    }
    if (!readOnly && openForWriting.has(realPath)) {
      throw new QmpError('Failed to get "write" lock');
    }
    try {
      this.byteStore = FileByteStore.open(filename, { readOnly });
    } catch (error) {
      throw openError(filename, error);
    }
    this.lockKey = readOnly ? null : realPath;
    if (this.lockKey) openForWriting.add(this.lockKey);
  }

  size(): number {
    return this.byteStore.size();
  }

  read(offset: number, length: number): Buffer {
    const buffer = Buffer.alloc(length);
    this.byteStore.pread(buffer, offset);
    return buffer;
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
    if (this.lockKey) openForWriting.delete(this.lockKey);
  }

  imageInfo(): Record<string, unknown> {
    return {
      'virtual-size': this.size(),
      filename: this.filename,
      format: 'file',
      'actual-size': allocatedBytes(this.filename),
      'dirty-flag': false,
    };
  }
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
