import net from 'node:net';
import fs from 'node:fs';
import type { Logger } from 'pino';
import type { SessionHost } from './session-host.ts';
import { serveConnections } from './socket-session.ts';

export interface UnixListenOptions {
  path: string;
  mode: number;
  /** Serve every client at once instead of one at a time (QEMU's way). */
  concurrentClients: boolean;
  /** QEMU's pretty=on: replies and events laid out over several lines. */
  pretty: boolean;
}

/** Listens on a Unix socket and hands its connections to QMP sessions. */
export async function listenUnix(options: UnixListenOptions, host: SessionHost, log: Logger): Promise<net.Server> {
  await removeStaleSocket(options.path);
  // Half-open: a client that shuts down its sending side still gets every reply.
  const server = net.createServer({ allowHalfOpen: true });
  serveConnections(server, options.concurrentClients, { pretty: options.pretty }, host, log);
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
