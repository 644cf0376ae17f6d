import net from 'node:net';
import type { Logger } from 'pino';
import type { SessionHost } from './session-host.ts';
import { serveConnections, serveSocket } from './socket-session.ts';

/**
 * Serves QMP on a socket the parent process passed down as fd=N. A listening socket
 * gets clients like any monitor; a connected one (an end of a socketpair, as QEMU's
 * Python harness passes) is the one client. listen(2) on a connected socket fails
 * with EINVAL, which is how the two are told apart.
 */
export async function serveInheritedSocket(
  fd: number,
  concurrentClients: boolean,
  host: SessionHost,
  log: Logger,
): Promise<net.Server | undefined> {
  const server = net.createServer();
  const listening = await new Promise<boolean>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => (error.code === 'EINVAL' ? resolve(false) : reject(error)));
    server.listen({ fd }, () => resolve(true));
  });
  if (listening) {
    serveConnections(server, concurrentClients, host, log);
    return server;
  }
  void serveSocket(new net.Socket({ fd, readable: true, writable: true }), host, log);
  return undefined;
}
