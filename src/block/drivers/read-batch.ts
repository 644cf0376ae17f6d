import fs from 'node:fs';

/** Linux's limit on the buffers of one readv. */
const IOV_MAX = 1024;
/** One readv reads at most this much, so a client's batch still spreads over the pool's threads. */
const RUN_BYTES = 1024 * 1024;

interface QueuedRead {
  buffer: Buffer;
  position: number;
  resolve: (bytesRead: number) => void;
  reject: (error: Error) => void;
}

/**
 * Thread-pool reads of one file, gathered over an event-loop turn: reads that
 * follow each other on the file (an NBD client's pipelined sequential reads)
 * go to the pool as one readv. Every trip to libuv's pool
 * wakes a worker and then the loop again, and on a small machine each wake
 * costs the event loop more than the copy it waits for.
 */
export class ReadBatch {
  private queued: QueuedRead[] = [];

  constructor(private readonly fd: () => number) {}

  /** Reads into `buffer` from `position`; resolves with the bytes read, short only at end of file. */
  read(buffer: Buffer, position: number): Promise<number> {
    if (buffer.length === 0) return Promise.resolve(0);
    return new Promise((resolve, reject) => {
      this.queued.push({ buffer, position, resolve, reject });
      if (this.queued.length === 1) setImmediate(() => this.issue());
    });
  }

  /** Sends the reads gathered so far to the pool, one readv per run of adjacent reads. */
  issue(): void {
    const reads = this.queued;
    this.queued = [];
    for (let first = 0; first < reads.length; ) {
      let end = first + 1;
      let bytes = reads[first]!.buffer.length;
      while (end < reads.length && end - first < IOV_MAX && bytes + reads[end]!.buffer.length <= RUN_BYTES && adjacent(reads[end - 1]!, reads[end]!)) bytes += reads[end++]!.buffer.length;
      if (end - first === 1) readAll(this.fd(), reads[first]!, 0);
      else readRun(this.fd(), reads.slice(first, end));
      first = end;
    }
  }
}

function adjacent(before: QueuedRead, after: QueuedRead): boolean {
  return before.position + before.buffer.length === after.position;
}

function readRun(fd: number, run: QueuedRead[]): void {
  fs.readv(
    fd,
    run.map((read) => read.buffer),
    run[0]!.position,
    (error, bytesRead) => {
      if (error) {
        for (const read of run) read.reject(error);
        return;
      }
      let left = bytesRead;
      for (const read of run) {
        const filled = Math.min(left, read.buffer.length);
        left -= filled;
        // A short readv (the end of the file, or the kernel stopping early) leaves the rest to single reads.
        if (filled === read.buffer.length) read.resolve(filled);
        else readAll(fd, read, filled);
      }
    },
  );
}

/** Reads the rest of one buffer from `done` on, until it is full or the file ends. */
function readAll(fd: number, read: QueuedRead, done: number): void {
  fs.read(fd, read.buffer, done, read.buffer.length - done, read.position + done, (error, bytesRead) => {
    if (error) read.reject(error);
    else if (bytesRead === 0 || done + bytesRead === read.buffer.length) read.resolve(done + bytesRead);
    else readAll(fd, read, done + bytesRead);
  });
}
