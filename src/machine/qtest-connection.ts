import fs from 'node:fs';
import type net from 'node:net';
import type { MonitorEndpoint } from '../cli/index.ts';
import { QtestSession } from './qtest.ts';
import { connectUnixSocket } from '../transport/client-socket.ts';

export interface QtestOptions {
  endpoint: MonitorEndpoint;
  clockCommands: boolean;
  /** -qtest-log: a file, "none", or undefined for stderr (QEMU's default). */
  logFile?: string;
}

/** Connects the -qtest chardev (QEMU's harness listens, QEMU connects) and answers line by line. */
export async function startQtest(options: QtestOptions): Promise<{ close(): void }> {
  if (options.endpoint.kind !== 'connect') throw new Error('only a client-mode unix socket is supported for -qtest by qblockd');
  const socket = await connectUnixSocket(options.endpoint.path);
  const session = new QtestSession(options.clockCommands, qtestLog(options.logFile));
  serveLines(socket, (line) => session.handle(line));
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    session.close();
  };
  socket.on('close', close);
  socket.on('error', () => {});
  return { close };
}

function qtestLog(logFile: string | undefined): ((line: string) => void) | undefined {
  if (logFile === 'none') return undefined;
  if (logFile === undefined) return (line) => process.stderr.write(line);
  const fd = fs.openSync(logFile, 'w');
  return (line) => fs.writeSync(fd, line);
}

function serveLines(socket: net.Socket, answer: (line: string) => string): void {
  let buffered = '';
  socket.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline).replace(/\r$/, '');
      buffered = buffered.slice(newline + 1);
      if (line.trim() !== '') socket.write(answer(line));
    }
  });
}
