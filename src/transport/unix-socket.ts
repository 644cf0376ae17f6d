import net from 'node:net';
import fs from 'node:fs';
import type { Logger } from 'pino';
import type { OutgoingMessage, SessionTransport } from '../qmp/session.ts';
import type { SessionHost } from './session-host.ts';

export interface UnixListenOptions {
  path: string;
  mode: number;
  /** QEMU's pretty=on: replies and events laid out over several lines. */
  pretty: boolean;
}

/** Listens on a Unix socket and hands each connection to a new QMP session. */
export async function listenUnix(options: UnixListenOptions, host: SessionHost, log: Logger): Promise<net.Server> {
  await removeStaleSocket(options.path);
  const server = net.createServer((socket) => {
    const transport = new SocketTransport(socket);
    const session = host.openSession(transport, { pretty: options.pretty });
    session.flowControl = { pause: () => socket.pause(), resume: () => socket.resume() };
    socket.on('data', (chunk) => session.receive(chunk));
    socket.on('error', (error) => log.debug({ err: error, session: session.id }, 'client socket error'));
    socket.on('close', () => host.closeSession(session));
  });
  const previousUmask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(previousUmask);
  }
  fs.chmodSync(options.path, options.mode);
  return server;
}

/**
 * A socket file left by a dead daemon is replaced; one that a live process
 * answers on is left alone and reported.
 */
async function removeStaleSocket(path: string): Promise<void> {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(path);
  } catch {
    return;
  }
  if (!stat.isSocket()) throw new Error(`Failed to bind socket to ${path}: file exists and is not a socket`);
  const alive = await new Promise<boolean>((resolve) => {
    const probe = net.connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (alive) throw new Error(`Failed to bind socket to ${path}: another process is listening on it`);
  fs.unlinkSync(path);
}

/** Text goes to the socket at most this much at a time, so a huge reply is never copied whole. */
const WRITE_SLICE = 1 << 20;

/** A monitor socket: one message per line, every line break sent as "\r\n" as QEMU's monitor sends it. */
class SocketTransport implements SessionTransport {
  /** Text accepted by send() and not yet handed to the socket, from index `head` on. */
  private unwritten: string[] = [];
  private head = 0;
  private unwrittenLength = 0;

  constructor(private readonly socket: net.Socket) {
    socket.on('drain', () => this.pump());
  }

  send(messages: readonly OutgoingMessage[]): void {
    if (this.socket.destroyed) return;
    for (const parts of messages) {
      for (const part of parts) this.unwritten.push(part);
      this.unwritten.push('\n');
    }
    for (const parts of messages) this.unwrittenLength += parts.reduce((sum, part) => sum + part.length, 1);
    this.pump();
  }

  /** Writes slices while the socket keeps up; 'drain' brings it back for the rest. */
  private pump(): void {
    while (this.head < this.unwritten.length && this.socket.writableLength < WRITE_SLICE && !this.socket.destroyed) {
      let slice = '';
      while (this.head < this.unwritten.length && slice.length < WRITE_SLICE) {
        const next = this.unwritten[this.head]!;
        const room = WRITE_SLICE - slice.length;
        if (next.length <= room) {
          slice += next;
          this.head++;
        } else {
          slice += next.slice(0, room);
          this.unwritten[this.head] = next.slice(room);
        }
      }
      this.unwrittenLength -= slice.length;
      // QMP output is ASCII (wire.ts escapes the rest): latin1 writes it at one byte a character.
      this.socket.write(slice.includes('\n') ? slice.replaceAll('\n', '\r\n') : slice, 'latin1');
    }
    if (this.head === this.unwritten.length) {
      this.unwritten = [];
      this.head = 0;
    }
  }

  pendingBytes(): number {
    return this.socket.destroyed ? 0 : this.socket.writableLength + this.unwrittenLength;
  }

  drained(): Promise<void> {
    return socketDrained(this.socket);
  }

  close(): void {
    this.socket.end();
  }

  abort(): void {
    this.socket.destroy();
  }
}

/** Resolves on the socket's next 'drain', or at once when it is gone. */
function socketDrained(socket: net.Socket): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.once('drain', done);
    socket.once('close', done);
  });
}
