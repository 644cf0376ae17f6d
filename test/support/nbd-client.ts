import net from 'node:net';

/**
 * A raw NBD client for protocol tests, written from the spec independently of
 * src/nbd: it sends exactly the bytes a test asks for and parses what comes
 * back into plain objects that two servers' answers can be compared by.
 */

export const OPT = { EXPORT_NAME: 1, ABORT: 2, LIST: 3, STARTTLS: 5, INFO: 6, GO: 7, STRUCTURED_REPLY: 8, LIST_META: 9, SET_META: 10 };
export const CMD = { READ: 0, WRITE: 1, DISC: 2, FLUSH: 3, TRIM: 4, CACHE: 5, WRITE_ZEROES: 6, BLOCK_STATUS: 7 };

export interface OptionReply {
  option: number;
  type: number;
  /** Payload: text for errors, hex otherwise. */
  payload: string;
}

export interface Chunk {
  kind: 'simple' | 'structured';
  flags?: number;
  type?: number;
  error?: number;
  handle: string;
  payload: string;
}

export class NbdWire {
  private buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;
  /** Most bytes ever held unread by this client. */
  received = 0;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.received += chunk.length;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  static connect(target: string | { host: string; port: number }): Promise<NbdWire> {
    return new Promise((resolve, reject) => {
      const socket = typeof target === 'string' ? net.connect(target) : net.connect(target.port, target.host);
      socket.once('connect', () => resolve(new NbdWire(socket)));
      socket.once('error', reject);
    });
  }

  /** Connects, reads the greeting and sends the client flags (fixed newstyle + no zeroes by default). */
  static async handshake(target: string | { host: string; port: number }, clientFlags = 3): Promise<{ wire: NbdWire; greeting: string }> {
    const wire = await NbdWire.connect(target);
    const greeting = (await wire.read(18)).toString('hex');
    wire.send(u32(clientFlags));
    return { wire, greeting };
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  async read(length: number, timeoutMs = 5000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.buffer.length < length) {
      if (this.closed) throw new Error(`closed after ${this.buffer.length} of ${length} bytes`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${length} bytes within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    const out = this.buffer.subarray(0, length);
    this.buffer = this.buffer.subarray(length);
    return out;
  }

  /** Resolves true once the server has closed the connection (false if it is still open after the timeout). */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.closed;
  }

  option(option: number, payload: Buffer = Buffer.alloc(0), declaredLength = payload.length): void {
    const header = Buffer.alloc(16);
    header.write('IHAVEOPT', 0, 'latin1');
    header.writeUInt32BE(option, 8);
    header.writeUInt32BE(declaredLength, 12);
    this.send(Buffer.concat([header, payload]));
  }

  async optionReply(): Promise<OptionReply> {
    const header = await this.read(20);
    if (header.readBigUInt64BE(0) !== 0x3e889045565a9n) throw new Error(`bad reply magic ${header.toString('hex')}`);
    const type = header.readUInt32BE(12);
    const payload = await this.read(header.readUInt32BE(16));
    return { option: header.readUInt32BE(8), type, payload: type >= 0x80000000 ? payload.toString('utf8') : payload.toString('hex') };
  }

  /** Option replies up to and including the final one (ACK or an error). */
  async optionReplies(): Promise<OptionReply[]> {
    const replies: OptionReply[] = [];
    for (;;) {
      const reply = await this.optionReply();
      replies.push(reply);
      if (reply.type === 1 || reply.type >= 0x80000000) return replies;
    }
  }

  request(type: number, offset: number, length: number, options: { flags?: number; handle?: number; payload?: Buffer } = {}): void {
    const out = Buffer.alloc(28);
    out.writeUInt32BE(0x25609513, 0);
    out.writeUInt16BE(options.flags ?? 0, 4);
    out.writeUInt16BE(type, 6);
    out.writeBigUInt64BE(BigInt(options.handle ?? 1), 8);
    out.writeBigUInt64BE(BigInt(offset), 16);
    out.writeUInt32BE(length, 24);
    this.send(options.payload ? Buffer.concat([out, options.payload]) : out);
  }

  /** One simple reply (with `dataLength` bytes of data when it succeeds). */
  async simpleReply(dataLength = 0): Promise<Chunk> {
    const header = await this.read(16);
    if (header.readUInt32BE(0) !== 0x67446698) throw new Error(`not a simple reply: ${header.toString('hex')}`);
    const error = header.readUInt32BE(4);
    const payload = error === 0 && dataLength ? (await this.read(dataLength)).toString('hex') : '';
    return { kind: 'simple', error, handle: header.subarray(8, 16).toString('hex'), payload };
  }

  /**
   * The whole reply to one request in structured mode: a simple reply (QEMU
   * sends those for successes without data), or chunks up to the one flagged DONE.
   */
  async reply(): Promise<Chunk[]> {
    const chunks: Chunk[] = [];
    for (;;) {
      const magic = (await this.read(4)).readUInt32BE(0);
      if (magic === 0x67446698) {
        const rest = await this.read(12);
        chunks.push({ kind: 'simple', error: rest.readUInt32BE(0), handle: rest.subarray(4, 12).toString('hex'), payload: '' });
        return chunks;
      }
      if (magic !== 0x668e33ef) throw new Error(`not a reply: ${magic.toString(16)}`);
      const header = await this.read(16);
      const flags = header.readUInt16BE(0);
      const type = header.readUInt16BE(2);
      const body = await this.read(header.readUInt32BE(12));
      const payload = type & 0x8000 ? `${body.readUInt32BE(0)}:${body.subarray(6).toString('utf8')}` : body.toString('hex');
      chunks.push({ kind: 'structured', flags, type, handle: header.subarray(4, 12).toString('hex'), payload });
      if (flags & 1) return chunks;
    }
  }

  close(): void {
    this.socket.destroy();
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}

export function u16(value: number): Buffer {
  const out = Buffer.alloc(2);
  out.writeUInt16BE(value);
  return out;
}

export function u32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value);
  return out;
}

/** A length-prefixed string, as names and queries are sent. */
export function lstr(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  return Buffer.concat([u32(bytes.length), bytes]);
}

/** NBD_OPT_GO / NBD_OPT_INFO payload. */
export function infoPayload(name: string, requests: number[] = []): Buffer {
  return Buffer.concat([lstr(name), u16(requests.length), ...requests.map(u16)]);
}

/** NBD_OPT_{LIST,SET}_META_CONTEXT payload. */
export function metaPayload(name: string, queries: string[]): Buffer {
  return Buffer.concat([lstr(name), u32(queries.length), ...queries.map(lstr)]);
}
