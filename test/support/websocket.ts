import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import WebSocket from 'ws';
import { DaemonProcess, waitFor } from './daemon.ts';

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface WebSocketClient {
  socket: WebSocket;
  frames: string[];
  /** The next text frame; rejects after the timeout. */
  next(timeoutMs?: number): Promise<string>;
  /** Resolves when the connection is closed. */
  closed(): Promise<void>;
}

/** A WebSocket QMP client that keeps every frame it receives. */
export async function openWebSocket(url: string, options: { origin?: string; headers?: Record<string, string> } = {}): Promise<WebSocketClient> {
  const socket = new WebSocket(url, { ...(options.origin ? { origin: options.origin } : {}), headers: options.headers ?? {} });
  const frames: string[] = [];
  let wake: (() => void) | undefined;
  let isClosed = false;
  socket.on('message', (data) => {
    frames.push(data.toString());
    wake?.();
  });
  socket.on('close', () => {
    isClosed = true;
    wake?.();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  return {
    socket,
    frames,
    async next(timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (frames.length === 0) {
        if (isClosed) throw new Error('connection closed');
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no frame within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      return frames.shift()!;
    },
    closed() {
      if (isClosed) return Promise.resolve();
      return new Promise((resolve) => socket.once('close', () => resolve()));
    },
  };
}

export interface WebSocketDaemon {
  daemon: DaemonProcess;
  /** ws://127.0.0.1:PORT/ */
  base: string;
  token: string;
  tokenFile: string;
}

/**
 * A daemon with a WebSocket listener (extra `websocket` keys merged in) and no
 * configured monitor socket besides its private one; the token file goes in `tokenDir`.
 */
export async function startWithWebSocket(dir: string, options: { websocket?: Record<string, unknown>; args?: string[]; tokenDir?: string } = {}): Promise<WebSocketDaemon> {
  const port = await freePort();
  const tokenFile = path.join(options.tokenDir ?? dir, 'ws.token');
  const config = path.join(dir, 'config.json');
  fs.writeFileSync(config, JSON.stringify({ monitors: [], websocket: { port, tokenFile, ...options.websocket } }));
  const daemon = await DaemonProcess.start(['--config', config, ...(options.args ?? [])]);
  await waitFor(() => fs.existsSync(tokenFile), 10_000);
  return { daemon, base: `ws://127.0.0.1:${port}/`, token: fs.readFileSync(tokenFile, 'utf8').trim(), tokenFile };
}
