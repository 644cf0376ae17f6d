import type net from 'node:net';
import type { Logger } from 'pino';
import type { OutgoingMessage, SessionTransport } from '../qmp/session.ts';
import type { MonitorOptions, SessionHost } from './session-host.ts';

/** Runs one QMP session over a connected stream socket; resolves when the socket closes. */
export function serveSocket(socket: net.Socket, options: MonitorOptions, host: SessionHost, log: Logger): Promise<void> {
  const session = host.openSession(new SocketTransport(socket), options);
  session.flowControl = { pause: () => socket.pause(), resume: () => socket.resume() };
  socket.on('data', (chunk: Buffer) => session.receive(chunk));
  socket.on('end', () => session.endOfInput());
  socket.on('error', (error) => log.debug({ err: error, session: session.id }, 'client socket error'));
  socket.resume();
  return new Promise((resolve) => {
    socket.on('close', () => {
      host.closeSession(session);
      resolve();
    });
  });
}

/**
 * Hands a listening server's connections to sessions. As QEMU's socket chardev, a monitor
 * serves one client at a time: later clients stay connected but unanswered (no greeting)
 * until the one before them leaves. With `concurrent`, every client is served at once.
 */
export function serveConnections(server: net.Server, concurrent: boolean, options: MonitorOptions, host: SessionHost, log: Logger): void {
  if (concurrent) {
    server.on('connection', (socket) => void serveSocket(socket, options, host, log));
    return;
  }
  const waiting: net.Socket[] = [];
  let busy = false;
  const serveNext = (): void => {
    const next = waiting.shift();
    if (!next) {
      busy = false;
      return;
    }
    busy = true;
    void serveSocket(next, options, host, log).then(serveNext);
  };
  server.on('connection', (socket) => {
    socket.pause();
    waiting.push(socket);
    socket.once('close', () => {
      const index = waiting.indexOf(socket);
      if (index >= 0) waiting.splice(index, 1);
    });
    if (!busy) serveNext();
  });
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
