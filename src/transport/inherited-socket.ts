import fs from 'node:fs';
import net from 'node:net';
import type { Logger } from 'pino';
import type { SessionHost } from './session-host.ts';
import { serveConnections, serveSocket } from './socket-session.ts';

/** __SO_ACCEPTCON in /proc/net/unix's Flags column: the socket listens. */
const ACCEPTING = 0x10000;

/**
 * Serves QMP on a socket the parent process passed down as fd=N. A listening socket
 * gets clients like any monitor; a connected one (an end of a socketpair, as QEMU's
 * Python harness passes) is the one client.
 */
export async function serveInheritedSocket(
  fd: number,
  concurrentClients: boolean,
  host: SessionHost,
  log: Logger,
): Promise<net.Server | undefined> {
  if (!isListening(fd)) {
    void serveSocket(new net.Socket({ fd, readable: true, writable: true }), host, log);
    return undefined;
  }
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ fd }, resolve);
  });
  serveConnections(server, concurrentClients, host, log);
  return server;
}

/**
 * Whether the Unix socket behind fd listens. Node cannot ask the socket itself (and a
 * failed listen() attempt closes the descriptor), so the kernel's table of Unix sockets
 * is read by inode. Without that table, the socket is taken as connected.
 */
function isListening(fd: number): boolean {
  const inode = String(fs.fstatSync(fd).ino);
  let table: string;
  try {
    table = fs.readFileSync('/proc/net/unix', 'utf8');
  } catch {
    return false;
  }
  for (const line of table.split('\n').slice(1)) {
    const columns = line.trim().split(/\s+/);
    if (columns[6] === inode) return (parseInt(columns[3]!, 16) & ACCEPTING) !== 0;
  }
  return false;
}
