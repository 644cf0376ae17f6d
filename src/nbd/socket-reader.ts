import type net from 'node:net';

/** The peer closed the connection (or it was closed) before the bytes asked for arrived. */
export class ConnectionEnded extends Error {
  constructor(readonly partial: boolean) {
    super('connection ended');
  }
}

/** Bytes held beyond what the current read needs before the socket is paused. */
const READ_AHEAD = 256 * 1024;

/**
 * Exact-length reads from a socket with bounded buffering: the socket is
 * paused whenever more than the current read (plus a little read-ahead) is
 * held, so a client that sends faster than it is served costs no memory.
 */
export class SocketReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  /** The read waiting for bytes, answered straight from the 'data' event. */
  private waiting: { length: number; resolve: (bytes: Buffer) => void; reject: (error: Error) => void } | null = null;

  constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      if (this.buffered >= (this.waiting?.length ?? 0) + READ_AHEAD) socket.pause();
      this.answerWaiting();
    });
    const end = () => {
      this.ended = true;
      this.answerWaiting();
    };
    socket.on('end', end);
    socket.on('close', end);
  }

  /** The next `length` bytes if they have all arrived, without waiting; null otherwise. */
  readBuffered(length: number): Buffer | null {
    return this.buffered >= length ? this.take(length) : null;
  }

  read(length: number): Promise<Buffer> {
    if (this.buffered >= length) return Promise.resolve(this.take(length));
    if (this.ended) return Promise.reject(new ConnectionEnded(this.buffered > 0));
    this.socket.resume();
    return new Promise((resolve, reject) => (this.waiting = { length, resolve, reject }));
  }

  /** Discards `length` bytes without holding more than the read-ahead. */
  async skip(length: number): Promise<void> {
    for (let remaining = length; remaining > 0; ) {
      const piece = Math.min(remaining, READ_AHEAD);
      await this.read(piece);
      remaining -= piece;
    }
  }

  private answerWaiting(): void {
    const waiting = this.waiting;
    if (!waiting) return;
    if (this.buffered >= waiting.length) {
      this.waiting = null;
      waiting.resolve(this.take(waiting.length));
    } else if (this.ended) {
      this.waiting = null;
      waiting.reject(new ConnectionEnded(this.buffered > 0));
    }
  }

  private take(length: number): Buffer {
    const head = this.chunks[0];
    let out: Buffer;
    if (head && head.length >= length) {
      // The common case, the bytes all in the first chunk, needs no copy.
      if (head.length === length) {
        out = head;
        this.chunks.shift();
      } else {
        out = head.subarray(0, length);
        this.chunks[0] = head.subarray(length);
      }
    } else {
      out = Buffer.allocUnsafe(length);
      for (let at = 0; at < length; ) {
        const chunk = this.chunks[0]!;
        const count = Math.min(chunk.length, length - at);
        chunk.copy(out, at, 0, count);
        at += count;
        if (count === chunk.length) this.chunks.shift();
        else this.chunks[0] = chunk.subarray(count);
      }
    }
    this.buffered -= length;
    if (this.buffered < READ_AHEAD && !this.ended) this.socket.resume();
    return out;
  }
}
