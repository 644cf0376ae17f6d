import crypto from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from 'pino';
import type { SessionTransport } from '../qmp/session.ts';
import type { SessionHost } from './session-host.ts';

export interface WebSocketListenOptions {
  host: string;
  port: number;
  /** Browser origins allowed to connect (with the token); a request with any other Origin is refused. */
  allowedOrigins: string[];
  /** Every request, page or WebSocket, must present this, as `?token=` or `Authorization: Bearer`. */
  token: string;
  maxMessageBytes: number;
  /** Answers plain HTTP requests that passed the token check (the web view); absent, they get 426. */
  serveHttp?: (req: IncomingMessage, res: ServerResponse) => void;
}

/**
 * Serves QMP over WebSocket, one JSON message per frame, on an HTTP server
 * that may also serve the web view. One check guards both.
 */
export async function listenWebSocket(
  options: WebSocketListenOptions,
  host: SessionHost,
  log: Logger,
): Promise<{ server: WebSocketServer; http: http.Server }> {
  const expected = digest(options.token);
  const refused = (req: IncomingMessage): boolean => {
    const refusal = refusalReason(req, options, expected);
    if (refusal !== null) log.warn({ remote: req.socket.remoteAddress, origin: req.headers.origin, url: req.url?.replace(/token=[^&]*/, 'token=…'), reason: refusal }, 'refused connection');
    return refusal !== null;
  };
  const httpServer = http.createServer((req, res) => {
    if (refused(req)) return void res.writeHead(403, { 'Content-Type': 'text/plain' }).end('Forbidden\n');
    if (options.serveHttp) return options.serveHttp(req, res);
    res.writeHead(426, { 'Content-Type': 'text/plain' }).end('Upgrade Required\n');
  });
  const server = new WebSocketServer({
    server: httpServer,
    maxPayload: options.maxMessageBytes,
    verifyClient: ({ req }: { req: IncomingMessage }, accept: (ok: boolean, code?: number, message?: string) => void) =>
      refused(req) ? accept(false, 403, 'Forbidden') : accept(true),
  });
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(options.port, options.host, () => resolve());
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
  return { server, http: httpServer };
}

const digest = (text: string) => crypto.createHash('sha256').update(text).digest();

/** Why a request is refused, or null to let it in. */
function refusalReason(req: IncomingMessage, options: WebSocketListenOptions, expected: Buffer): string | null {
  const origin = req.headers.origin;
  const allowed = options.allowedOrigins;
  const ownPage = options.serveHttp !== undefined && origin === `http://${req.headers.host}`;
  if (origin !== undefined && !ownPage && !allowed.includes(origin) && !allowed.includes('*')) return 'origin not allowed';
  const presented = presentedToken(req);
  if (presented === undefined) return 'no token';
  // Equal-length digests keep the comparison's time independent of the token's contents.
  if (!crypto.timingSafeEqual(digest(presented), expected)) return 'wrong token';
  return null;
}

function presentedToken(req: IncomingMessage): string | undefined {
  const bearer = req.headers.authorization?.match(/^Bearer +(\S+)\s*$/i);
  if (bearer) return bearer[1];
  return new URL(req.url ?? '/', 'http://localhost').searchParams.get('token') ?? undefined;
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
