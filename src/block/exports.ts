import { QmpError } from '../qmp/errors.ts';
import type { DirtyBitmap } from './bitmap/dirty-bitmap.ts';
import { checkBitmapPermission } from './bitmap/permissions.ts';
import type { BlockGraph } from './graph.ts';
import type { BlockNode } from './node.ts';
import type { BlockDirtyBitmapOrStr, BlockExportInfo, BlockExportOptions, BlockExportRemoveMode, XQblockdExport } from '../schema/generated/qapi-types.ts';
import { isWellFormedId } from '../qmp/well-formed-id.ts';

/** A connected client, as the export sees it: something it can disconnect. */
export interface ExportClient {
  disconnect(): void;
}

/** Longest export name or description QEMU accepts (NBD_MAX_STRING_SIZE). */
const MAX_STRING_SIZE = 4096;
const SECTOR = 512;

export interface BlockExport {
  readonly id: string;
  readonly name: string;
  readonly description: string | undefined;
  /** Moves to a snapshot's overlay, as QEMU's export BlockBackend does. */
  node: BlockNode;
  readonly writable: boolean;
  readonly allocationDepth: boolean;
  readonly bitmaps: DirtyBitmap[];
  /** The size clients see: the node's size rounded down to whole sectors, as QEMU advertises it. */
  readonly size: number;
  /** With several connections allowed, clients may spread their requests over them (NBD_FLAG_CAN_MULTI_CONN). */
  readonly multiConnection: boolean;
  readonly clients: Set<ExportClient>;
  /** Deleted, gone from the server's list, waiting for its clients to go. */
  shuttingDown: boolean;
}

/**
 * The block side of exports: which nodes are exported under which names,
 * the bitmaps they make busy, and their lifetime while clients hold them.
 * An export is really gone (BLOCK_EXPORT_DELETED) once it is deleted and its
 * last client has left. The NBD server (src/nbd) serves what is listed here.
 */
export class ExportManager {
  /** Set while the NBD server runs: whether it allows more than one connection. */
  private server: { maxConnections: number } | null = null;
  /** Oldest first, the order NBD_OPT_LIST follows; query-block-exports lists newest first. */
  private readonly exports: BlockExport[] = [];

  constructor(
    private readonly graph: BlockGraph,
    private readonly emitDeleted: (id: string) => void,
    /** An NBD client came or went: nothing else tells watchers of it. */
    private readonly clientsChanged: () => void = () => {},
  ) {}

  serverStarted(maxConnections: number): void {
    this.server = { maxConnections };
  }

  /** The server stops: every export goes at once, its clients disconnected. */
  serverStopped(): void {
    for (const exported of [...this.exports]) {
      this.shutDown(exported);
      this.finish(exported);
    }
    this.server = null;
  }

  add(args: BlockExportOptions): void {
    if (!isWellFormedId(args.id)) throw new QmpError('Invalid block export id');
    if (this.exports.some((exported) => exported.id === args.id)) {
      throw new QmpError(`Block export id '${args.id}' is already in use`);
    }
    if (args.type !== 'nbd') throw new QmpError(`Export type '${args.type}' is not supported by qblockd`);
    const node = this.graph.findNode(args['node-name']);
    if (!node) throw new QmpError(`Cannot find device='' nor node-name='${args['node-name']}'`);
    // qblockd runs no iothreads, so any name is one QEMU would not find.
    if (args.iothread !== undefined) throw new QmpError(`iothread "${args.iothread}" not found`);
    if (args.writable && node.readOnly) throw new QmpError('Cannot export read-only node as writable');
    const writeConflict = args.writable ? this.graph.writeConflict(node) : null;
    if (writeConflict) throw new QmpError(writeConflict);
    if (!this.server) throw new QmpError('NBD server not running');
    const name = args.name ?? args['node-name'];
    if (Buffer.byteLength(name) > MAX_STRING_SIZE) throw new QmpError(`export name '${name}' too long`);
    if (args.description !== undefined && Buffer.byteLength(args.description) > MAX_STRING_SIZE) {
      throw new QmpError(`description '${args.description}' too long`);
    }
    if (this.findByName(name)) throw new QmpError(`NBD server already has export named '${name}'`);
    // An NBD export forbids resizing its node while it is served.
    const resizeConflict = this.graph.resizeConflict(node);
    if (resizeConflict) throw new QmpError(resizeConflict);
    const writable = args.writable ?? false;
    const bitmaps = (args.bitmaps ?? []).map((reference) => {
      const bitmap = this.findExportBitmap(node, reference);
      if (typeof reference === 'string' && !writable && !node.readOnly && bitmap.enabled) {
        throw new QmpError(`Enabled bitmap '${bitmap.name}' incompatible with readonly export`);
      }
      checkBitmapPermission(bitmap, 'export');
      return bitmap;
    });
    const exported: BlockExport = {
      id: args.id,
      name,
      description: args.description,
      node,
      writable,
      allocationDepth: args['allocation-depth'] ?? false,
      bitmaps,
      size: Math.floor(node.size() / SECTOR) * SECTOR,
      multiConnection: this.server.maxConnections !== 1,
      clients: new Set(),
      shuttingDown: false,
    };
    for (const bitmap of bitmaps) bitmap.acquire(exported);
    node.users.add(`export ${args.id}`);
    this.exports.push(exported);
  }

  delete(id: string, mode: BlockExportRemoveMode = 'safe'): void {
    const exported = this.exports.find((candidate) => candidate.id === id);
    if (!exported) throw new QmpError(`Export '${id}' is not found`);
    if (exported.shuttingDown) throw new QmpError(`Export '${id}' is already shutting down`);
    if (mode === 'safe' && exported.clients.size > 0) throw new QmpError(`export '${id}' still in use`);
    this.shutDown(exported);
    if (exported.clients.size === 0) this.finish(exported);
  }

  /** The export a client may open under `name`: deleted ones are no longer offered. */
  /** A snapshot put `to` over `from`: exports of `from` serve `to` from now on. */
  moveNode(from: BlockNode, to: BlockNode): void {
    for (const exported of this.exports) {
      if (exported.node !== from) continue;
      from.users.delete(`export ${exported.id}`);
      exported.node = to;
      to.users.add(`export ${exported.id}`);
    }
  }

  findByName(name: string): BlockExport | undefined {
    return this.exports.find((exported) => exported.name === name && !exported.shuttingDown);
  }

  /** Exports offered to clients, oldest first. */
  offered(): BlockExport[] {
    return this.exports.filter((exported) => !exported.shuttingDown);
  }

  attach(exported: BlockExport, client: ExportClient): void {
    exported.clients.add(client);
    this.clientsChanged();
  }

  detach(exported: BlockExport, client: ExportClient): void {
    if (!exported.clients.delete(client)) return;
    if (exported.shuttingDown && exported.clients.size === 0) this.finish(exported);
    this.clientsChanged();
  }

  /** The exports of `node` (shutting-down ones too: their clients still use it). */
  onNode(node: BlockNode): BlockExport[] {
    return this.exports.filter((exported) => exported.node === node);
  }

  list(): BlockExportInfo[] {
    return [...this.exports].reverse().map((exported) => ({
      id: exported.id,
      type: 'nbd',
      'node-name': exported.node.nodeName,
      'shutting-down': exported.shuttingDown,
    }));
  }

  /** What the web view shows of each export besides query-block-exports: name, writability, bitmaps, NBD clients. */
  details(): XQblockdExport[] {
    return [...this.exports].reverse().map((exported) => ({
      id: exported.id,
      type: 'nbd',
      name: exported.name,
      'node-name': exported.node.nodeName,
      writable: exported.writable,
      'shutting-down': exported.shuttingDown,
      bitmaps: exported.bitmaps.map((bitmap) => bitmap.name),
      clients: exported.clients.size,
    }));
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

  private shutDown(exported: BlockExport): void {
    exported.shuttingDown = true;
    for (const client of [...exported.clients]) client.disconnect();
  }

  private finish(exported: BlockExport): void {
    const index = this.exports.indexOf(exported);
    if (index < 0) return;
    this.exports.splice(index, 1);
    exported.clients.clear();
    for (const bitmap of exported.bitmaps) bitmap.release(exported);
    exported.node.users.delete(`export ${exported.id}`);
    this.graph.backendDetached(exported.node);
    this.emitDeleted(exported.id);
    // A node only the export kept (a snapshot overlay that took the export over) goes with it, as in QEMU.
    if (!exported.node.monitorOwned && exported.node.users.size === 0) this.graph.closeImplicit(exported.node);
  }
}

function filteredChild(node: BlockNode): BlockNode | undefined {
  return node.driver.format === 'raw' ? node.children[0] : undefined;
}
