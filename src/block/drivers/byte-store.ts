import fs from 'node:fs';
import type { BlkdebugEvent } from '../../schema/generated/qapi-types.ts';
import { BlockIoError } from '../io-error.ts';
import { ReadBatch } from './read-batch.ts';
import { EIO, EFBIG } from '../../errno.ts';
import { hostPath } from '../host-path.ts';

/** QEMU's block layer refuses any request ending past this (BDRV_MAX_LENGTH) with EIO. */
const MAX_REQUEST_END = 2 ** 63 - 2 ** 30;

/** Byte-addressed storage under a format driver: a host file, or memory in tests. */
export interface ByteStore {
  readonly readOnly: boolean;
  /** Reopens the storage for reading only, or for reading and writing. */
  setReadOnly?(readOnly: boolean): void;
  size(): number;
  /** Reads into `buffer` at `offset`; returns the bytes read (short at end of file). */
  pread(buffer: Buffer, offset: number): number;
  /** `pread` on libuv's thread pool, so the event loop serves other clients meanwhile. */
  preadAsync(buffer: Buffer, offset: number): Promise<number>;
  pwrite(buffer: Buffer, offset: number): void;
  truncate(length: number): void;
  flush(): void;
  close(): void;
  /** Passes a format driver's debug event to the node below, when the storage is one (a blkdebug filter may listen). */
  debugEvent?(event: BlkdebugEvent): void;
}

/**
 * A host file. Metadata and writes use synchronous I/O (the daemon is
 * single-threaded and they are small); bulk guest reads can go to the thread pool.
 */
export class FileByteStore implements ByteStore {
  /** The file's length, kept up to date by our own writes: the image is ours while it is open (image locks). */
  private length: number;
  private readonly reads = new ReadBatch(() => this.fd);

  private constructor(
    private readonly path: string,
    private fd: number,
    public readOnly: boolean,
  ) {
    this.length = fs.fstatSync(fd).size;
  }

  static open(path: string, options: { readOnly: boolean }): FileByteStore {
    return new FileByteStore(path, fs.openSync(hostPath(path), openFlags(options.readOnly)), options.readOnly);
  }

  /** A new descriptor in the new mode replaces the old one only once it is open. */
  setReadOnly(readOnly: boolean): void {
    const fd = fs.openSync(hostPath(this.path), openFlags(readOnly));
    fs.closeSync(this.fd);
    this.fd = fd;
    this.readOnly = readOnly;
  }

  size(): number {
    return this.length;
  }

  pread(buffer: Buffer, offset: number): number {
    if (offset + buffer.length > MAX_REQUEST_END) throw new BlockIoError(EIO);
    // A hostile table offset may lie beyond any position a file can have: nothing is there.
    if (offset + buffer.length > Number.MAX_SAFE_INTEGER) return 0;
    let done = 0;
    while (done < buffer.length) {
      const read = fs.readSync(this.fd, buffer, done, buffer.length - done, offset + done);
      if (read === 0) break;
      done += read;
    }
    return done;
  }

  preadAsync(buffer: Buffer, offset: number): Promise<number> {
    if (offset + buffer.length > MAX_REQUEST_END) return Promise.reject(new BlockIoError(EIO));
    if (offset + buffer.length > Number.MAX_SAFE_INTEGER) return Promise.resolve(0);
    return this.reads.read(buffer, offset);
  }

  /** A write the host refuses (past the file system's largest file, a full disk) fails as QEMU's would, with its errno. */
  pwrite(buffer: Buffer, offset: number): void {
    if (offset + buffer.length > MAX_REQUEST_END) throw new BlockIoError(EIO);
    if (offset + buffer.length > Number.MAX_SAFE_INTEGER) throw new BlockIoError(EFBIG);
    let done = 0;
    try {
      while (done < buffer.length) done += fs.writeSync(this.fd, buffer, done, buffer.length - done, offset + done);
    } catch (error) {
      const errno = (error as NodeJS.ErrnoException).errno;
      throw errno === undefined ? error : new BlockIoError(-errno);
    }
    this.length = Math.max(this.length, offset + buffer.length);
  }

  truncate(length: number): void {
    fs.ftruncateSync(this.fd, length);
    this.length = length;
  }

  flush(): void {
    fs.fdatasyncSync(this.fd);
  }

  close(): void {
    this.reads.issue();
    fs.closeSync(this.fd);
  }
}

function openFlags(readOnly: boolean): string {
  return readOnly ? 'r' : 'r+';
}

/** In-memory storage that records every write, so tests can cut the history anywhere (a crash). */
export class MemoryByteStore implements ByteStore {
  readonly writes: Array<{ offset: number; data: Buffer } | 'flush'> = [];
  /** Room for the contents and more, doubled as they grow, so an image written in small steps is not copied at each one. */
  private buffer: Buffer;
  private length: number;

  constructor(
    initial: Buffer = Buffer.alloc(0),
    public readOnly = false,
  ) {
    this.buffer = Buffer.from(initial);
    this.length = initial.length;
  }

  setReadOnly(readOnly: boolean): void {
    this.readOnly = readOnly;
  }

  contents(): Buffer {
    return Buffer.from(this.buffer.subarray(0, this.length));
  }

  size(): number {
    return this.length;
  }

  pread(buffer: Buffer, offset: number): number {
    return offset >= this.length ? 0 : this.buffer.copy(buffer, 0, offset, Math.min(this.length, offset + buffer.length));
  }

  async preadAsync(buffer: Buffer, offset: number): Promise<number> {
    return this.pread(buffer, offset);
  }

  pwrite(buffer: Buffer, offset: number): void {
    if (offset + buffer.length > this.length) this.truncate(offset + buffer.length);
    buffer.copy(this.buffer, offset);
    this.writes.push({ offset, data: Buffer.from(buffer) });
  }

  /** Bytes past the end are kept zero, so growing again reads zeroes there. */
  truncate(length: number): void {
    if (length > this.buffer.length) {
      const grown = Buffer.alloc(Math.max(length, this.buffer.length * 2));
      this.buffer.copy(grown, 0, 0, this.length);
      this.buffer = grown;
    } else if (length < this.length) {
      this.buffer.fill(0, length, this.length);
    }
    this.length = length;
  }

  flush(): void {
    this.writes.push('flush');
  }

  close(): void {}
}
