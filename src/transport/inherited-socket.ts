import net from 'node:net';
import type { Logger } from 'pino';
import type { MonitorOptions, SessionHost } from './session-host.ts';
import { serveConnections, serveSocket } from './socket-session.ts';

/**
 * Serves QMP on a socket the parent process passed down as fd=N. As in QEMU, the chardev's
 * `server` option says what it is: a listening socket (server=on) gets clients like any
 * monitor; otherwise it is taken as connected (an end of a socketpair, as QEMU's Python
 * harness passes), the one client.
 */
export async function serveInheritedSocket(
  fd: number,
  listening: boolean,
  concurrentClients: boolean,
  options: MonitorOptions,
  host: SessionHost,
  log: Logger,
): Promise<net.Server | undefined> {
  if (!listening) {
    void serveSocket(new net.Socket({ fd, readable: true, writable: true }), options, host, log);
    return undefined;
  }
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ fd }, resolve);
  });
  serveConnections(server, concurrentClients, options, host, log);
  return server;
}
