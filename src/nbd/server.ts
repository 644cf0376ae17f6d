import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { hostErrorText } from '../errno.ts';
import { inetListenOptions } from './inet-listen.ts';
import type { ExportManager } from '../block/exports.ts';
import { QmpError } from '../qmp/errors.ts';
import type { CommandArguments, SocketAddressLegacy } from '../schema/generated/qapi-types.ts';
import { BufferPool } from './buffer-pool.ts';
import { NbdConnection } from './connection.ts';

export type NbdServerOptions = CommandArguments['nbd-server-start'];

/** Free read buffers the server keeps for its clients (a few clients' reads in flight). */
const READ_BUFFERS_KEPT = 16 * 1024 * 1024;

/** How long the free read buffers outlive the last client: clients that reconnect one after another reuse them. */
const READ_BUFFERS_IDLE_MS = 5000;

/**
 * The NBD server: one listener, its clients, and QEMU's connection limit.
 * While `max-connections` clients are connected, new ones wait unanswered
 * (QEMU stops accepting), and are served in turn when a slot frees.
 */
export class NbdServer {
  private listener: net.Server | null = null;
  private unixPath: string | null = null;
  private maxConnections = 0;
  private readonly connections = new Set<NbdConnection>();
  private readonly waiting: net.Socket[] = [];
  /** Read buffers shared by all clients, so a new client does not fault in fresh memory for every read. */
  private readonly readBuffers = new BufferPool(READ_BUFFERS_KEPT);
  private releaseBuffers: NodeJS.Timeout | null = null;

  constructor(
    private readonly exports: ExportManager,
    /** Called on every request a client sends: the daemon is not idle while it serves NBD. */
    private readonly noteActivity: () => void = () => {},
  ) {}

  async start(options: NbdServerOptions): Promise<void> {
    if (this.listener) throw new QmpError('NBD server already running');
    const { listenOptions, unixPath } = await resolveAddress(options.addr);
    if (unixPath) removeStaleSocket(unixPath);
    const listener = net.createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      listener.once('error', (error: NodeJS.ErrnoException) => reject(bindError(options.addr, error)));
      listener.listen(listenOptions, () => resolve());
    });
    listener.on('error', () => {});
    const tlsCreds = options['tls-creds'];
    if (tlsCreds !== undefined) {
      // No object-add tls-creds-x509 exists in qblockd, so no id names credentials.
      listener.close();
      if (unixPath) fs.rmSync(unixPath, { force: true });
      throw new QmpError(`No TLS credentials with id '${tlsCreds}'`);
    }
    this.listener = listener;
    this.unixPath = unixPath;
    this.maxConnections = options['max-connections'] ?? 0;
    this.exports.serverStarted(this.maxConnections);
  }

  stop(): void {
    if (!this.listener) throw new QmpError('NBD server not running');
    this.close();
  }

  /** Stops the server if it runs (daemon shutdown). */
  close(): void {
    if (!this.listener) return;
    this.exports.serverStopped();
    for (const connection of [...this.connections]) connection.close();
    for (const socket of this.waiting.splice(0)) socket.destroy();
    this.listener.close();
    if (this.unixPath) fs.rmSync(this.unixPath, { force: true });
    this.listener = null;
    this.unixPath = null;
    this.readBuffers.clear();
  }

  private accept(socket: net.Socket): void {
    socket.on('error', () => {});
    if (this.maxConnections > 0 && this.connections.size >= this.maxConnections) {
      socket.pause();
      socket.once('close', () => this.waiting.splice(this.waiting.indexOf(socket) >>> 0, 1));
      this.waiting.push(socket);
      return;
    }
    this.serve(socket);
  }

  private serve(socket: net.Socket): void {
    socket.setNoDelay(true);
    const connection = new NbdConnection(socket, this.exports, this.readBuffers, this.noteActivity);
    this.connections.add(connection);
    if (this.releaseBuffers) clearTimeout(this.releaseBuffers);
    this.releaseBuffers = null;
    connection.closed.then(() => {
      this.connections.delete(connection);
      const next = this.waiting.shift();
      if (next && this.listener) this.serve(next);
      else if (this.connections.size === 0) {
        this.releaseBuffers = setTimeout(() => this.readBuffers.clear(), READ_BUFFERS_IDLE_MS).unref();
      }
    });
  }
}

async function resolveAddress(address: SocketAddressLegacy): Promise<{ listenOptions: net.ListenOptions; unixPath: string | null }> {
  if (address.type === 'unix') {
    const unixPath = address.data.path || temporarySocketPath();
    return { listenOptions: { path: unixPath }, unixPath };
  }
  if (address.type === 'inet') return { listenOptions: await inetListenOptions(address.data), unixPath: null };
  throw new QmpError(`Socket address type '${address.type}' is not supported by qblockd`);
}

/** The size of sockaddr_un's sun_path: QEMU refuses a longer path before it touches the file system. */
const SUN_PATH_BYTES = 108;

/** QEMU unlinks whatever the path names before it binds (a stale socket, even a plain file). */
function removeStaleSocket(unixPath: string): void {
  if (Buffer.byteLength(unixPath) > SUN_PATH_BYTES) throw new QmpError(`UNIX socket path '${unixPath}' is too long`);
  try {
    fs.unlinkSync(unixPath);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw new QmpError(`Failed to unlink socket ${unixPath}: ${hostErrorText({ code } as NodeJS.ErrnoException)}`);
  }
}

/** An empty unix path gets a fresh one in the temporary directory, as QEMU makes it. */
function temporarySocketPath(): string {
  const directory = process.env.TMPDIR || os.tmpdir();
  const letters = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  for (;;) {
    let suffix = '';
    for (let i = 0; i < 6; i++) suffix += letters[Math.floor(Math.random() * letters.length)];
    const candidate = path.join(directory, `qemu-socket-${suffix}`);
    if (!fs.existsSync(candidate)) return candidate;
  }
}

function bindError(address: SocketAddressLegacy, error: NodeJS.ErrnoException): QmpError {
  if (address.type === 'unix') {
    // libuv reports a missing directory as EACCES; bind(2) said ENOENT, as QEMU prints it.
    const missingDirectory = error.code === 'EACCES' && !fs.existsSync(path.dirname(address.data.path));
    return new QmpError(`Failed to bind socket to ${address.data.path}: ${hostErrorText(missingDirectory ? { ...error, code: 'ENOENT' } : error)}`);
  }
  // libuv refuses a host name longer than 255 bytes with EINVAL; glibc's resolver finds no such name.
  if (error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN' || (error.code === 'EINVAL' && error.syscall === 'getaddrinfo')) {
    const { host, port } = (address as { data: { host: string; port: string } }).data;
    return new QmpError(`address resolution failed for ${host}:${port}: Name or service not known`);
  }
  return new QmpError(`Failed to bind socket: ${hostErrorText(error)}`);
}
