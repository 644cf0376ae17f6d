import type net from 'node:net';
import type { Logger } from 'pino';
import type { SessionTransport } from '../qmp/session.ts';
import type { SessionHost } from './session-host.ts';

/** Runs one QMP session over a connected stream socket; resolves when the socket closes. */
export function serveSocket(socket: net.Socket, host: SessionHost, log: Logger): Promise<void> {
  const session = host.openSession(new SocketTransport(socket));
  session.flowControl = { pause: () => socket.pause(), resume: () => socket.resume() };
  socket.on('data', (chunk: Buffer) => session.receive(chunk));
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
export function serveConnections(server: net.Server, concurrent: boolean, host: SessionHost, log: Logger): void {
  if (concurrent) {
    server.on('connection', (socket) => void serveSocket(socket, host, log));
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
    void serveSocket(next, host, log).then(serveNext);
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

class SocketTransport implements SessionTransport {
  constructor(private readonly socket: net.Socket) {}

  send(message: string): void {
    if (!this.socket.destroyed) this.socket.write(message + '\r\n');
  }

  pendingBytes(): number {
    return this.socket.writableLength;
  }

  drained(): Promise<void> {
    if (this.socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.once('drain', done);
      this.socket.once('close', done);
    });
  }

  close(): void {
    this.socket.end();
  }
}
