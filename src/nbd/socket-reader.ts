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
  private wanted = 0;
  private ended = false;
  private wake: (() => void) | null = null;

  constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      if (this.buffered >= this.wanted + READ_AHEAD) socket.pause();
      this.notify();
    });
    const end = () => {
      this.ended = true;
      this.notify();
    };
    socket.on('end', end);
    socket.on('close', end);
  }

  async read(length: number): Promise<Buffer> {
    await this.fill(length);
    return this.take(length);
  }

  /** Discards `length` bytes without holding more than the read-ahead. */
  async skip(length: number): Promise<void> {
    let remaining = length;
    while (remaining > 0) {
      const piece = Math.min(remaining, READ_AHEAD);
      await this.fill(piece);
      this.take(piece);
      remaining -= piece;
    }
  }

  private async fill(length: number): Promise<void> {
    this.wanted = length;
    while (this.buffered < length) {
      if (this.ended) throw new ConnectionEnded(this.buffered > 0);
      this.socket.resume();
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private take(length: number): Buffer {
    const head = this.chunks[0];
    let out: Buffer;
    if (head && head.length >= length) {
      // The common case, the bytes all in the first chunk, needs no copy.
      out = head.subarray(0, length);
      if (head.length === length) this.chunks.shift();
      else this.chunks[0] = head.subarray(length);
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
    this.wanted = 0;
    if (this.buffered < READ_AHEAD && !this.ended) this.socket.resume();
    return out;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}
