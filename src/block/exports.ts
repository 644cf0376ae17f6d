import fs from 'node:fs';
import net from 'node:net';
import { QmpError } from '../qmp/errors.ts';
import type { DirtyBitmap } from './bitmap/dirty-bitmap.ts';
import { checkBitmapPermission } from './bitmap/permissions.ts';
import type { BlockGraph } from './graph.ts';
import type { BlockNode } from './node.ts';
import type {
  BlockDirtyBitmapOrStr,
  BlockExportInfo,
  BlockExportOptions,
  SocketAddressLegacy,
} from '../schema/generated/qapi-types.ts';

interface BlockExport {
  id: string;
  name: string;
  node: BlockNode;
  bitmaps: DirtyBitmap[];
}

/**
 * The NBD server and its exports. Serving NBD data is not implemented yet:
 * the server binds its address (so clients see it exists) and refuses clients.
 * What exports do to bitmaps — make them busy — is fully emulated.
 */
export class ExportManager {
  private server: net.Server | null = null;
  private unixPath: string | null = null;
  /** Newest first, as query-block-exports lists them. */
  private readonly exports: BlockExport[] = [];

  constructor(
    private readonly graph: BlockGraph,
    private readonly emitDeleted: (id: string) => void,
  ) {}

  async startServer(address: SocketAddressLegacy): Promise<void> {
    if (this.server) throw new QmpError('NBD server already running');
    const server = net.createServer((client) => client.destroy());
    const listenArgs = listenArguments(address);
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => reject(bindError(address, error)));
      server.listen(listenArgs, () => resolve());
    });
    this.server = server;
    this.unixPath = address.type === 'unix' ? address.data.path : null;
  }

  stopServer(): void {
    if (!this.server) throw new QmpError('NBD server not running');
    for (const exported of [...this.exports]) this.remove(exported);
    this.server.close();
    if (this.unixPath) fs.rmSync(this.unixPath, { force: true });
    this.server = null;
    this.unixPath = null;
  }

  add(args: BlockExportOptions): void {
    if (args.type !== 'nbd') throw new QmpError(`Export type '${args.type}' is not supported by qblockd`);
    if (this.exports.some((exported) => exported.id === args.id)) {
      throw new QmpError(`Block export id '${args.id}' is already in use`);
    }
    const node = this.graph.findNode(args['node-name']);
    if (!node) throw new QmpError(`Cannot find device='' nor node-name='${args['node-name']}'`);
    if (!this.server) throw new QmpError('NBD server not running');
    const name = args.name ?? args['node-name'];
    if (this.exports.some((exported) => exported.name === name)) {
      throw new QmpError(`NBD server already has export named '${name}'`);
    }
    const readOnly = !(args.writable ?? false);
    const bitmaps = (args.bitmaps ?? []).map((reference) => {
      const bitmap = this.findExportBitmap(node, reference);
      checkBitmapPermission(bitmap, 'export');
      if (readOnly && !node.readOnly && bitmap.enabled) {
        throw new QmpError(`Enabled bitmap '${bitmap.name}' incompatible with readonly export`);
      }
      return bitmap;
    });
    const exported: BlockExport = { id: args.id, name, node, bitmaps };
    for (const bitmap of bitmaps) bitmap.acquire(exported);
    node.users.add(`export ${args.id}`);
    this.exports.unshift(exported);
  }

  delete(id: string): void {
    const exported = this.exports.find((candidate) => candidate.id === id);
    if (!exported) throw new QmpError(`Export '${id}' is not found`);
    this.remove(exported);
  }

  list(): BlockExportInfo[] {
    return this.exports.map((exported) => ({
      id: exported.id,
      type: 'nbd',
      'node-name': exported.node.nodeName,
      'shutting-down': false,
    }));
  }

  close(): void {
    if (this.server) this.stopServer();
  }

  private findExportBitmap(node: BlockNode, reference: BlockDirtyBitmapOrStr): DirtyBitmap {
    if (typeof reference !== 'string') {
      const owner = this.graph.findBitmapNode(reference.node);
      const bitmap = owner.findBitmap(reference.name);
      if (!bitmap) throw new QmpError(`Dirty bitmap '${reference.name}' not found`);
      return bitmap;
    }
    // A name is looked up on the exported node and then down its chain of filtered children.
    for (let current: BlockNode | undefined = node; current; current = filteredChild(current)) {
      const bitmap = current.findBitmap(reference);
      if (bitmap) return bitmap;
    }
    throw new QmpError(`Bitmap '${reference}' is not found`);
  }

  private remove(exported: BlockExport): void {
    const index = this.exports.indexOf(exported);
    if (index < 0) return;
    this.exports.splice(index, 1);
    for (const bitmap of exported.bitmaps) bitmap.release(exported);
    exported.node.users.delete(`export ${exported.id}`);
    this.emitDeleted(exported.id);
  }
}

function filteredChild(node: BlockNode): BlockNode | undefined {
  return node.driver.format === 'raw' ? node.children[0] : undefined;
}

function listenArguments(address: SocketAddressLegacy): net.ListenOptions {
  if (address.type === 'unix') return { path: address.data.path };
  if (address.type === 'inet') return { host: address.data.host, port: Number(address.data.port) };
  throw new QmpError(`Socket address type '${address.type}' is not supported by qblockd`);
}

function bindError(address: SocketAddressLegacy, error: NodeJS.ErrnoException): QmpError {
  if (address.type === 'unix') {
    return new QmpError(`Failed to bind socket to ${address.data.path}: ${errnoText(error)}`);
  }
  return new QmpError(`Failed to bind socket: ${errnoText(error)}`);
}

function errnoText(error: NodeJS.ErrnoException): string {
  const texts: Record<string, string> = {
    EADDRINUSE: 'Address already in use',
    EACCES: 'Permission denied',
    ENOENT: 'No such file or directory',
  };
  return texts[error.code ?? ''] ?? error.message;
}
