import type { IncomingMessage } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from 'pino';
import type { SessionTransport } from '../qmp/session.ts';
import type { SessionHost } from './session-host.ts';

export interface WebSocketListenOptions {
  host: string;
  port: number;
  /** Browser origins allowed to connect; clients sending no Origin (non-browsers) are always allowed. */
  allowedOrigins: string[];
  maxMessageBytes: number;
}

/** Serves the same QMP session over WebSocket: one JSON message per frame. */
export async function listenWebSocket(
  options: WebSocketListenOptions,
  host: SessionHost,
  log: Logger,
): Promise<WebSocketServer> {
  const server = new WebSocketServer({
    host: options.host,
    port: options.port,
    maxPayload: options.maxMessageBytes,
    verifyClient: ({ req }: { req: IncomingMessage }) => originAllowed(req, options.allowedOrigins, log),
  });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  server.on('connection', (socket) => {
    const session = host.openSession(new WebSocketTransport(socket));
    socket.on('message', (data, isBinary) => {
      const message = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      if (isBinary || message.length > 0) session.receiveMessage(message);
    });
    socket.on('error', (error) => log.debug({ err: error, session: session.id }, 'websocket error'));
    socket.on('close', () => host.closeSession(session));
  });
  return server;
}

function originAllowed(req: IncomingMessage, allowed: string[], log: Logger): boolean {
  const origin = req.headers.origin;
  if (origin === undefined || allowed.includes(origin) || allowed.includes('*')) return true;
  log.warn({ origin }, 'refused WebSocket connection from a disallowed origin');
  return false;
}

class WebSocketTransport implements SessionTransport {
  constructor(private readonly socket: WebSocket) {}

  send(message: string): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(message);
  }

  pendingBytes(): number {
    return this.socket.bufferedAmount;
  }

  async drained(): Promise<void> {
    while (this.socket.readyState === this.socket.OPEN && this.socket.bufferedAmount > 0) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  close(): void {
    this.socket.close();
  }
}
