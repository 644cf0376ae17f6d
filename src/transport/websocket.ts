import crypto from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from 'pino';
import type { OutgoingMessage, SessionTransport } from '../qmp/session.ts';
import type { SessionHost } from './session-host.ts';

export interface WebSocketListenOptions {
  host: string;
  port: number;
  /** Browser origins allowed to connect (with the token); a request with any other Origin is refused. */
  allowedOrigins: string[];
  /** Every connection must present this, as `?token=` or `Authorization: Bearer`. */
  token: string;
  maxFrameBytes: number;
}

/**
 * Serves QMP over WebSocket. Frames are chunks of one JSON stream, as bytes are
 * on the monitor socket: a request may span frames and a frame may hold several
 * requests. Each reply or event goes out as one text frame.
 */
export async function listenWebSocket(
  options: WebSocketListenOptions,
  host: SessionHost,
  log: Logger,
): Promise<WebSocketServer> {
  const expected = digest(options.token);
  const server = new WebSocketServer({
    host: options.host,
    port: options.port,
    maxPayload: options.maxFrameBytes,
    verifyClient: ({ req }: { req: IncomingMessage }, accept: (ok: boolean, code?: number, message?: string) => void) => {
      const refusal = refusalReason(req, options.allowedOrigins, expected);
      if (refusal === null) return accept(true);
      log.warn({ remote: req.socket.remoteAddress, origin: req.headers.origin, reason: refusal }, 'refused WebSocket connection');
      accept(false, 403, 'Forbidden');
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  server.on('connection', (socket) => {
    const session = host.openSession(new WebSocketTransport(socket), { pretty: false });
    session.flowControl = { pause: () => socket.pause(), resume: () => socket.resume() };
    socket.on('message', (data) => session.receive(toBuffer(data)));
    socket.on('error', (error) => log.debug({ err: error, session: session.id }, 'websocket error'));
    socket.on('close', () => host.closeSession(session));
  });
  return server;
}

function toBuffer(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.isBuffer(data) ? data : Buffer.from(data);
}

const digest = (text: string) => crypto.createHash('sha256').update(text).digest();

/** Why a connection request is refused, or null to let it in. */
function refusalReason(req: IncomingMessage, allowedOrigins: string[], expected: Buffer): string | null {
  const origin = req.headers.origin;
  if (origin !== undefined && !allowedOrigins.includes(origin) && !allowedOrigins.includes('*')) return 'origin not allowed';
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
