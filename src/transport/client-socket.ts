import net from 'node:net';
import { hostErrorText } from '../errno.ts';
import type { Logger } from 'pino';
import type { MonitorOptions, SessionHost } from './session-host.ts';
import { serveSocket } from './socket-session.ts';

/**
 * A monitor in client mode (server=off): qblockd connects to a Unix socket someone
 * else listens on and serves QMP to it. As in QEMU, failing to connect at start is fatal
 * and a closed connection is not reopened.
 */
export async function connectUnix(path: string, options: MonitorOptions, host: SessionHost, log: Logger): Promise<void> {
  void serveSocket(await connectUnixSocket(path), options, host, log);
}

/** Connects to a listening Unix socket; the error reads as QEMU's "Failed to connect to ...". */
export async function connectUnixSocket(path: string): Promise<net.Socket> {
  const socket = net.connect(path);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', (error: NodeJS.ErrnoException) => reject(new Error(`Failed to connect to '${path}': ${hostErrorText(error)}`)));
  });
  return socket;
}

