import fs from 'node:fs';

/** Byte-addressed storage under a format driver: a host file, or memory in tests. */
export interface ByteStore {
  readonly readOnly: boolean;
  /** Reopens the storage for reading only, or for reading and writing. */
  setReadOnly?(readOnly: boolean): void;
  size(): number;
  /** Reads into `buffer` at `offset`; returns the bytes read (short at end of file). */
  pread(buffer: Buffer, offset: number): number;
  pwrite(buffer: Buffer, offset: number): void;
  truncate(length: number): void;
  flush(): void;
  close(): void;
}

/** A host file through synchronous I/O: the daemon is single-threaded and requests are small. */
export class FileByteStore implements ByteStore {
  /** The file's length, kept up to date by our own writes: the image is ours while it is open (image locks). */
  private length: number;

  private constructor(
    private readonly path: string,
    private fd: number,
    public readOnly: boolean,
  ) {
    this.length = fs.fstatSync(fd).size;
  }

  static open(path: string, options: { readOnly: boolean }): FileByteStore {
    return new FileByteStore(path, fs.openSync(path, openFlags(options.readOnly)), options.readOnly);
  }

  /** A new descriptor in the new mode replaces the old one only once it is open. */
  setReadOnly(readOnly: boolean): void {
    const fd = fs.openSync(this.path, openFlags(readOnly));
    fs.closeSync(this.fd);
    this.fd = fd;
    this.readOnly = readOnly;
  }

  size(): number {
    return this.length;
  }

  pread(buffer: Buffer, offset: number): number {
    let done = 0;
    while (done < buffer.length) {
      const read = fs.readSync(this.fd, buffer, done, buffer.length - done, offset + done);
      if (read === 0) break;
      done += read;
    }
    return done;
  }

  pwrite(buffer: Buffer, offset: number): void {
    let done = 0;
    while (done < buffer.length) done += fs.writeSync(this.fd, buffer, done, buffer.length - done, offset + done);
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
    fs.closeSync(this.fd);
  }
}

function openFlags(readOnly: boolean): string {
  return readOnly ? 'r' : 'r+';
}

/** In-memory storage that records every write, so tests can cut the history anywhere (a crash). */
export class MemoryByteStore implements ByteStore {
  readonly writes: Array<{ offset: number; data: Buffer } | 'flush'> = [];
  private data: Buffer;

  constructor(
    initial: Buffer = Buffer.alloc(0),
    public readOnly = false,
  ) {
    this.data = Buffer.from(initial);
  }

  setReadOnly(readOnly: boolean): void {
    this.readOnly = readOnly;
  }

  contents(): Buffer {
    return Buffer.from(this.data);
  }

  size(): number {
    return this.data.length;
  }

  pread(buffer: Buffer, offset: number): number {
    return offset >= this.data.length ? 0 : this.data.copy(buffer, 0, offset, Math.min(this.data.length, offset + buffer.length));
  }

  pwrite(buffer: Buffer, offset: number): void {
    if (offset + buffer.length > this.data.length) this.grow(offset + buffer.length);
    buffer.copy(this.data, offset);
    this.writes.push({ offset, data: Buffer.from(buffer) });
  }

  truncate(length: number): void {
    if (length > this.data.length) this.grow(length);
    else this.data = this.data.subarray(0, length);
  }

  flush(): void {
    this.writes.push('flush');
  }

  close(): void {}

  private grow(length: number): void {
    const grown = Buffer.alloc(length);
    this.data.copy(grown);
    this.data = grown;
  }
}
