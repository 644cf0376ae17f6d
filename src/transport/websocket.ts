import crypto from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from 'pino';
import type { OutgoingMessage, SessionTransport } from '../qmp/session.ts';
import type { SessionHost } from './session-host.ts';

export interface WebSocketListenOptions {
  host: string;
  port: number;
  /** Browser origins allowed to connect (with the token); a request with any other Origin is refused. */
  allowedOrigins: string[];
  /** Every request, page or WebSocket, must present this, as `?token=` or `Authorization: Bearer`. */
  token: string;
  maxFrameBytes: number;
  /** Answers plain HTTP requests that passed the token check (the web view); absent, they get 426. */
  serveHttp?: (req: IncomingMessage, res: ServerResponse) => void;
}

/** The listener: its port, and close() to stop both the WebSocket and the HTTP side. */
export interface WebSocketListener {
  port: number;
  close(): void;
}

/**
 * Serves QMP over WebSocket. Frames are chunks of one JSON stream, as bytes are
 * on the monitor socket: a request may span frames and a frame may hold several
 * requests. Each reply or event goes out as one text frame. The HTTP server
 * underneath may also serve the web view; one check guards both.
 */
export async function listenWebSocket(
  options: WebSocketListenOptions,
  host: SessionHost,
  log: Logger,
): Promise<WebSocketListener> {
  const expected = digest(options.token);
  const refused = (req: IncomingMessage): boolean => {
    const refusal = refusalReason(req, options, expected);
    if (refusal !== null) log.warn({ remote: req.socket.remoteAddress, origin: req.headers.origin, reason: refusal }, 'refused connection');
    return refusal !== null;
  };
  const httpServer = http.createServer((req, res) => {
    if (refused(req)) return void res.writeHead(403, { 'Content-Type': 'text/plain' }).end('Forbidden\n');
    if (options.serveHttp) return options.serveHttp(req, res);
    res.writeHead(426, { 'Content-Type': 'text/plain' }).end('Upgrade Required\n');
  });
  const server = new WebSocketServer({
    server: httpServer,
    maxPayload: options.maxFrameBytes,
    verifyClient: ({ req }: { req: IncomingMessage }, accept: (ok: boolean, code?: number, message?: string) => void) =>
      refused(req) ? accept(false, 403, 'Forbidden') : accept(true),
  });
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(options.port, options.host, () => resolve());
  });
  server.on('connection', (socket) => {
    const session = host.openSession(new WebSocketTransport(socket), { pretty: false });
    session.flowControl = { pause: () => socket.pause(), resume: () => socket.resume() };
    socket.on('message', (data) => session.receive(toBuffer(data)));
    socket.on('error', (error) => log.debug({ err: error, session: session.id }, 'websocket error'));
    socket.on('close', () => host.closeSession(session));
  });
  return {
    port: (httpServer.address() as AddressInfo).port,
    close: () => {
      server.close();
      httpServer.close();
    },
  };
}

function toBuffer(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.isBuffer(data) ? data : Buffer.from(data);
}

const digest = (text: string) => crypto.createHash('sha256').update(text).digest();

/** Why a request is refused, or null to let it in. */
function refusalReason(req: IncomingMessage, options: WebSocketListenOptions, expected: Buffer): string | null {
  const origin = req.headers.origin;
  const allowed = options.allowedOrigins;
  // When the page is served here, its own origin is the one it connects back from.
  const ownPage = options.serveHttp !== undefined && origin === `http://${req.headers.host}`;
  if (origin !== undefined && !ownPage && !allowed.includes(origin) && !allowed.includes('*')) return 'origin not allowed';
  const presented = presentedToken(req);
  if (presented === undefined) return 'no token';
  // Equal-length digests keep the comparison's time independent of the token's contents.
  if (!crypto.timingSafeEqual(digest(presented), expected)) return 'wrong token';
  return null;
}

function presentedToken(req: IncomingMessage): string | undefined {
  const authorization = req.headers.authorization;
  const bearer = authorization?.match(/^Bearer +(\S+)\s*$/i);
  if (bearer) return bearer[1];
  const query = new URL(req.url ?? '/', 'ws://localhost').searchParams.get('token');
  return query ?? undefined;
}

class WebSocketTransport implements SessionTransport {
  private lastWrite: Promise<void> = Promise.resolve();

  constructor(private readonly socket: WebSocket) {}

  send(messages: readonly OutgoingMessage[]): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    for (const parts of messages) {
      const frame = parts.length === 1 ? parts[0]! : parts.join('');
      this.lastWrite = new Promise((resolve) => this.socket.send(frame, () => resolve()));
    }
  }

  pendingBytes(): number {
    return this.socket.readyState === this.socket.OPEN ? this.socket.bufferedAmount : 0;
  }

  /** Resolves once the last frame handed to send() has been written out (or failed). */
  drained(): Promise<void> {
    return this.lastWrite;
  }

  close(): void {
    this.socket.close();
  }

  abort(): void {
    this.socket.terminate();
  }
}
