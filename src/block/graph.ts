import { fileChildUser, permissionConflict, UNNAMED_BACKEND } from './permission-conflict.ts';
import { QmpError } from '../qmp/errors.ts';
import { BitmapData } from './bitmap/bitmap-data.ts';
import { DirtyBitmap } from './bitmap/dirty-bitmap.ts';
import { probeFormat } from './drive-options.ts';
import { jsonFilenameOptions } from './json-filename.ts';
import { BlkdebugDriver } from './drivers/blkdebug.ts';
import { CopyBeforeWriteDriver } from './drivers/copy-before-write.ts';
import type { BackingChainDriver, BlockDriver, HostLock, HostLockMode } from './drivers/driver.ts';
import { FileDriver } from './drivers/file.ts';
import { SnapshotAccessDriver } from './drivers/snapshot-access.ts';
import { NullDriver } from './drivers/null-co.ts';
import { Qcow2Driver } from './drivers/qcow2-driver.ts';
import { ThrottleDriver } from './drivers/throttle.ts';
import { ObjectRegistry } from './objects.ts';
import { corruptionEventData, corruptionReport } from './drivers/qcow2/corruption.ts';
import { RawDriver } from './drivers/raw.ts';
import { BlockNode, type BlockChildIo, type ChildLink } from './node.ts';
import { COMMON_RULES, FILE_RULES, NULL_RULES, RAW_RULES, firstProblem, integer, refuse, type OptionRule } from './drivers/option-rules.ts';
import { toQmpJson } from '../qmp/wire.ts';
import { blockCopyClusterSize } from './block-copy.ts';
import { qdictKeyOrder } from '../qmp/qdict-order.ts';
import type { BlockdevDriver, BlockdevOptions, BlockdevRef, BlockdevRefOrNull } from '../schema/generated/qapi-types.ts';
import { isWellFormedId } from '../qmp/well-formed-id.ts';

/** One driver's BlockdevOptions: the common members and its own. */
type DriverOptions<D extends BlockdevDriver> = Extract<BlockdevOptions, { driver: D }>;

type ChildResize = 'grows' | 'forbids' | undefined;

/** How a node is named in query output: its plain filename where it has one, else `json:` and its options. */
interface NodeDescription {
  /** The driver, the options that define the node's contents, and its child's, as given. */
  openOptions: Record<string, unknown>;
  plainFilename?: string;
  /** The node's driver is a protocol (QEMU's bdrv_file_open): a format node above may take its filename. */
  protocol: boolean;
  /** The filename the node has while its backing is the one its image names (QEMU's auto_backing_file decides). */
  ownPlainFilename?: string;
  /** Strong options were given: the node differs from its child, so a filter does not take the child's filename. */
  strongGiven: boolean;
  /** The backing file the node's image names; once that file is opened by default, the opened node's filename. */
  autoBackingFile?: string;
}

interface OpenArguments<Options> {
  options: Options;
  child: BlockChildIo | undefined;
  readOnly: boolean;
  /** The node's filename as it is now: it follows its children when a snapshot moves them. */
  filename: () => string;
  /** The children named by `extraChildren`, and their nodes. */
  extra: Record<string, BlockChildIo>;
  extraNodes: Record<string, BlockNode>;
  graph: BlockGraph;
  nodeName: string;
  /** The node's `json:` filename with some strong options changed (a throttle node reopened with another group). */
  filenameWith(changed: Record<string, unknown>): string;
}

interface DriverSpec<Options> {
  /** Format and filter drivers sit on a child named by this member (`file`; blkdebug's `image`). */
  childOption?: 'file' | 'image';
  /** Further children named by members (copy-before-write's `target`). */
  extraChildren?: readonly string[];
  /**
   * Keeps its own metadata in the child, so it claims the host file (QEMU's
   * image lock) for as long as it is attached. Raw passes its users' needs
   * through and, like an unused -drive, claims nothing.
   */
  claimsFile?: boolean;
  /** Takes the only write permission on its `file` child (QEMU's format drivers; copy-before-write). */
  unsharesFileWrite?: true;
  /**
   * What the node needs of its `file` child's size (QEMU's child permissions): a writable
   * format grows it; a raw window (an offset or a size) forbids any change.
   */
  childResize?(options: Options, readOnly: boolean): ChildResize;
  /** QEMU calls the driver a protocol (it has a protocol name): its refusals say so. */
  protocol?: true;
  /** QEMU's checks on this driver's option values, in its order (block/drivers/option-rules.ts). */
  rules: Array<OptionRule<Options>>;
  /** The options that change what the node contains: they appear in its `json:` filename (QEMU's strong options). */
  strongOptions: string[];
  /** The node's plain filename, if it has one: the host file's, the child's, or a URL-like name. */
  plainFilename(options: Options, child: NodeDescription | undefined, strongGiven: boolean): string | undefined;
  open(args: OpenArguments<Options>): BlockDriver;
}

/** Filter drivers show their child's filename unless their own strong options make the node different. */
const childFilename = (_options: unknown, child: NodeDescription | undefined, strongGiven: boolean) => (strongGiven ? undefined : child?.plainFilename);
/** A format node takes its child's filename only from a protocol node: opening that file with the format gives the same tree. */
const protocolChildFilename = (options: unknown, child: NodeDescription | undefined, strongGiven: boolean) =>
  child?.protocol ? childFilename(options, child, strongGiven) : undefined;

const NULL_DRIVER = {
  protocol: true as const,
  rules: NULL_RULES,
  strongOptions: ['size', 'read-zeroes'],
  plainFilename: (options: DriverOptions<'null-co' | 'null-aio'>, _child: NodeDescription | undefined, strongGiven: boolean) =>
    strongGiven ? undefined : `${options.driver}://`,
  open: ({ options, filename }: OpenArguments<DriverOptions<'null-co' | 'null-aio'>>) => new NullDriver(options.driver, options, filename()),
};

const DRIVERS: { [D in BlockdevDriver]?: DriverSpec<DriverOptions<D>> } = {
  'null-co': NULL_DRIVER,
  'null-aio': NULL_DRIVER,
  file: {
    protocol: true,
    rules: FILE_RULES,
    strongOptions: ['filename'],
    plainFilename: (options) => options.filename,
    open: ({ options, readOnly }) => new FileDriver(options.filename, readOnly),
  },
  raw: {
    childOption: 'file',
    rules: RAW_RULES,
    strongOptions: ['offset', 'size'],
    childResize: (options) => ((integer(options.offset) ?? 0n) !== 0n || options.size !== undefined ? 'forbids' : undefined),
    plainFilename: protocolChildFilename,
    open: ({ options, child, filename }) => new RawDriver(child!, options, filename),
  },
  qcow2: {
    childOption: 'file',
    claimsFile: true,
    unsharesFileWrite: true,
    rules: [],
    strongOptions: [],
    childResize: (_options, readOnly) => (readOnly ? undefined : 'grows'),
    plainFilename: protocolChildFilename,
    open: ({ options, child, filename, graph, nodeName }) =>
      new Qcow2Driver(
        child!,
        filename,
        options,
        (name) => graph.exists(name),
        (corruption, fatal) => {
          graph.warn(corruptionReport(corruption, fatal));
          graph.eventSink('BLOCK_IMAGE_CORRUPTED', corruptionEventData(corruption, graph.eventNames(nodeName), fatal));
        },
      ),
  },
  'copy-before-write': {
    childOption: 'file',
    unsharesFileWrite: true,
    extraChildren: ['target'],
    rules: [],
    strongOptions: [],
    plainFilename: childFilename,
    open: ({ options, child, extra, extraNodes, graph }) =>
      new CopyBeforeWriteDriver(child!, extra.target!, {
        bitmap: options.bitmap && graph.findBitmapData(options.bitmap.node, options.bitmap.name),
        clusterSize: blockCopyClusterSize(extraNodes.target!, graph.warn),
        onCbwError: options['on-cbw-error'],
        timeoutSeconds: options['cbw-timeout'],
      }),
  },
  'snapshot-access': {
    childOption: 'file',
    rules: [],
    strongOptions: [],
    plainFilename: childFilename,
    open: ({ child }) => new SnapshotAccessDriver(child!),
  },
  throttle: {
    childOption: 'file',
    rules: [],
    strongOptions: ['throttle-group'],
    plainFilename: () => undefined,
    open: ({ options, child, graph, filenameWith }) =>
      new ThrottleDriver(child!, graph.objects.throttleGroupFor(options['throttle-group']), (group) => filenameWith({ 'throttle-group': group })),
  },
  blkdebug: {
    childOption: 'image',
    protocol: true,
    rules: [],
    strongOptions: ['inject-error', 'set-state'],
    plainFilename: (_options, child, strongGiven) => (strongGiven || child?.plainFilename === undefined ? undefined : `blkdebug::${child.plainFilename}`),
    open: ({ options, child, filename }) => new BlkdebugDriver(child!, options['inject-error'] ?? [], options['set-state'] ?? [], filename),
  },
};

const NODE_NAME_MAX = 31;
/** -drive format=help, as QEMU prints it: every driver, sorted, all of them usable read-write. */
export function formatHelpText(): string {
  const names = Object.keys(DRIVERS).sort().join(' ');
  return `Supported formats: ${names}\nSupported formats (read-only): ${names}\n`;
}

/** A BlockBackend without a name (a guest disk over a -blockdev node): its root moves with filters as a named one's does. */
export interface UnnamedBackend {
  node: BlockNode;
}

/**
 * All block nodes and the devices (-drive BlockBackends) that name them.
 * Owns opening and closing, including loading and storing persistent bitmaps.
 */
export class BlockGraph {
  /** object-add's objects: throttle nodes find their groups here. */
  readonly objects = new ObjectRegistry();
  private readonly nodes = new Map<string, BlockNode>();
  private readonly devices = new Map<string, BlockNode>();
  private readonly unnamedBackends = new Set<UnnamedBackend>();
  /** Named BlockBackends without a medium (an empty CD-ROM or floppy drive). */
  private readonly emptyDrives = new Set<string>();
  /** Every named BlockBackend, with a medium or not, in creation order. */
  private readonly driveNames: string[] = [];
  private readonly writethroughDevices = new Set<string>();
  /** -drive devices whose BlockBackend holds the write permission: HMP qemu-io took it to write and keeps it, as QEMU's does. */
  private readonly writingDevices = new Set<string>();
  private readonly descriptions = new WeakMap<BlockNode, NodeDescription>();
  /** The node a driver put its unnamed `file` bitmaps on: its file child then, wherever a snapshot has moved that child since. */
  private readonly fileBitmapHolders = new WeakMap<BlockNode, BlockNode>();
  /** The options each node was opened, or last reopened, with: what blockdev-reopen compares against (block/reopen.ts). */
  readonly nodeOptions = new WeakMap<BlockNode, BlockdevOptions>();
  private generatedIds = 0;
  /** Where events the block layer raises itself go (BLOCK_IMAGE_CORRUPTED); the daemon connects it. */
  eventSink: (name: string, data: Record<string, unknown>) => void = () => {};
  /** Where the block layer's warnings go: QEMU prints them on stderr. */
  warn: (line: string) => void = () => {};
  /**
   * Checks and converts options the block layer reads itself (a `json:` backing name)
   * as QMP input; the daemon connects the schema. Unit tests take them as given.
   */
  readOptions: (options: Record<string, unknown>) => BlockdevOptions = (options) => options as unknown as BlockdevOptions;
  /**
   * A BlockBackend left `node`: QEMU 7.2 drains a node twice as one leaves it (a paused/running
   * pair each for the jobs the drain reaches); the daemon connects the job list.
   */
  backendDetached: (node: BlockNode) => void = () => {};

  /** Newest first, the order of QEMU's query-named-block-nodes. */
  allNodes(): BlockNode[] {
    return [...this.nodes.values()].reverse();
  }

  allDevices(): Array<[string, BlockNode]> {
    return [...this.devices.entries()];
  }

  /** Every named BlockBackend in creation order, with its root node (none for a drive without a medium). */
  namedBackends(): Array<[string, BlockNode | undefined]> {
    return this.driveNames.map((name) => [name, this.devices.get(name)]);
  }

  isEmptyDrive(name: string): boolean {
    return this.emptyDrives.has(name);
  }

  /** -drive without file or driver, and a machine's default drives: a named BlockBackend with no medium. */
  addEmptyDrive(id: string): void {
    this.checkNewDriveId(id);
    this.emptyDrives.add(id);
    this.driveNames.push(id);
  }

  /** The root node of the -drive BlockBackend NAME. */
  deviceNode(name: string): BlockNode | undefined {
    return this.devices.get(name);
  }

  /** A guest device's `drive` property was set: the BlockBackend NAME now sits on `node`. */
  replaceDeviceNode(name: string, node: BlockNode): void {
    const old = this.devices.get(name);
    if (!old) throw new QmpError(`Device '${name}' not found`);
    old.users.delete(`device ${name}`);
    node.users.add(`device ${name}`);
    this.devices.set(name, node);
    // The -drive's own node tree goes away with its last user, as in QEMU.
    if (!old.monitorOwned && old.users.size === 0) this.close(old);
  }

  /** A node's names as events give them: the device it is the root of ('' if none) and its node name. */
  eventNames(nodeName: string): { device: string; nodeName: string } {
    const node = this.nodes.get(nodeName);
    return { device: (node && this.deviceNameOf(node)) ?? '', nodeName };
  }

  deviceNameOf(node: BlockNode): string | undefined {
    for (const [name, device] of this.devices) if (device === node) return name;
    return undefined;
  }

  /** bdrv_lookup_bs: a device name first, then a node name. */
  findDeviceOrNode(name: string): BlockNode {
    return this.lookup(name, name);
  }

  /** bdrv_lookup_bs with a device name and a node name apart, either left out. */
  lookup(device: string | undefined, nodeName: string | undefined): BlockNode {
    if (device !== undefined && this.emptyDrives.has(device)) throw new QmpError(`Device '${device}' has no medium`);
    const node = (device !== undefined ? this.devices.get(device) : undefined) ?? (nodeName !== undefined ? this.nodes.get(nodeName) : undefined);
    if (!node) throw new QmpError(`Cannot find device='${device ?? ''}' nor node-name='${nodeName ?? ''}'`);
    return node;
  }

  /** Whether a device or a node goes by this name. */
  exists(name: string): boolean {
    return this.devices.has(name) || this.nodes.has(name);
  }

  /** The lookup the bitmap commands use for an existing bitmap's node. */
  findBitmapNode(name: string): BlockNode {
    const node = this.devices.get(name) ?? this.nodes.get(name);
    if (!node) throw new QmpError(`Node '${name}' not found`);
    return node;
  }

  /** qemu-io's lookup without -d: a device, else a node name, with bdrv_lookup_bs(NULL, name)'s message. */
  findForQemuIo(name: string): BlockNode {
    const node = this.devices.get(name) ?? this.nodes.get(name);
    if (!node) throw new QmpError(`Cannot find device='' nor node-name='${name}'`);
    return node;
  }

  /** The bits of an existing bitmap, with block_dirty_bitmap_lookup's errors. */
  findBitmapData(nodeName: string, name: string): BitmapData {
    const bitmap = this.findBitmapNode(nodeName).findBitmap(name);
    if (!bitmap) throw new QmpError(`Dirty bitmap '${name}' not found`);
    return bitmap.data;
  }

  findNode(nodeName: string): BlockNode | undefined {
    return this.nodes.get(nodeName);
  }

  /** blockdev-add / -blockdev. */
  addBlockdev(options: BlockdevOptions): BlockNode {
    if (options['node-name'] === undefined) throw new QmpError("'node-name' must be specified for the root node");
    return this.open(options, true);
  }

  /**
   * -drive if=none,id=NAME,...: a named device over a new node tree; `given` is the options as
   * typed (strings); `writethrough` for cache=writethrough|directsync.
   */
  addDrive(id: string, options: BlockdevOptions, given: object = options, writethrough = false): BlockNode {
    this.checkNewDriveId(id);
    const node = this.open(options, false, given);
    node.users.add(`device ${id}`);
    this.devices.set(id, node);
    this.driveNames.push(id);
    if (writethrough) this.writethroughDevices.add(id);
    return node;
  }

  private checkNewDriveId(id: string): void {
    if (this.devices.has(id) || this.emptyDrives.has(id) || this.nodes.has(id)) throw new QmpError(`Duplicate ID '${id}' for drive`);
  }

  /**
   * An image opened by file name for drive-backup's target or a snapshot's
   * overlay, closed again by closeImplicit; `withoutBacking` leaves the backing
   * its header names unopened (the caller attaches one).
   */
  openImplicit(filename: string, format: string | undefined, opening: { withoutBacking?: boolean; nodeName?: string; readOnly?: boolean } = {}): BlockNode {
    const driver = format ?? probeFormat(filename);
    const options: Record<string, unknown> = driver === 'file' ? { driver, filename } : { driver, file: { driver: 'file', filename } };
    if (opening.withoutBacking && driver !== 'file') options.backing = null;
    if (opening.nodeName !== undefined) options['node-name'] = opening.nodeName;
    if (opening.readOnly) options['read-only'] = true;
    return this.open(options as BlockdevOptions, false);
  }

  closeImplicit(node: BlockNode): void {
    this.close(node);
  }

  /** A new unnamed BlockBackend over `node` (a guest disk's; guest disks are never removed). */
  attachUnnamedBackend(node: BlockNode): UnnamedBackend {
    const backend = { node };
    this.unnamedBackends.add(backend);
    return backend;
  }

  /** A BlockdevRef as blockdev-create opens it: an existing node, or one defined in place (`opened`: close it after). */
  openReference(reference: BlockdevRef): { node: BlockNode; opened: boolean } {
    if (typeof reference === 'string') return { node: this.findDeviceOrNode(reference), opened: false };
    return { node: this.open(reference, false), opened: true };
  }

  /**
   * The checks of a filter node's name that QEMU's bdrv_insert_node makes ("Could not create
   * node: ..."); a job makes them before it builds anything.
   */
  checkFilterName(requestedName: string | undefined): void {
    if (requestedName === undefined) return;
    try {
      this.checkNodeName(requestedName);
    } catch (error) {
      throw new QmpError(`Could not create node: ${(error as Error).message}`);
    }
  }

  /** Puts a filter node above `node`, reading and writing it through `link`: devices that showed `node` now show the filter. */
  insertFilter(node: BlockNode, driver: BlockDriver, requestedName: string | undefined, link: ChildLink): BlockNode {
    this.checkFilterName(requestedName);
    const filter = new BlockNode(this.assignNodeName(requestedName), driver, [node], node.readOnly, false);
    filter.links.push(link);
    this.nodes.set(filter.nodeName, filter);
    node.users.add(`parent ${filter.nodeName}`);
    this.attachInternalBitmaps(filter);
    for (const [id, device] of this.devices) if (device === node) this.devices.set(id, filter);
    for (const backend of this.unnamedBackends) if (backend.node === node) backend.node = filter;
    return filter;
  }

  /** A driver's own unnamed bitmaps show on its node and on its `file` child, newest first. */
  private attachInternalBitmaps(node: BlockNode): void {
    const bitmaps = node.driver.internalBitmaps?.();
    if (!bitmaps) return;
    const holder = node.children[0]!;
    for (const bitmap of bitmaps.file) holder.addBitmap(bitmap);
    for (const bitmap of bitmaps.own) node.addBitmap(bitmap);
    this.fileBitmapHolders.set(node, holder);
  }

  private detachInternalBitmaps(node: BlockNode): void {
    const bitmaps = node.driver.internalBitmaps?.();
    if (!bitmaps) return;
    const holder = this.fileBitmapHolders.get(node)!;
    for (const bitmap of bitmaps.file) holder.dropBitmap(bitmap);
    for (const bitmap of bitmaps.own) node.dropBitmap(bitmap);
  }

  /** Takes a filter out again: its devices show the filtered node. */
  removeFilter(filter: BlockNode): void {
    const [child] = filter.children;
    this.detachInternalBitmaps(filter);
    for (const [id, device] of this.devices) if (device === filter) this.devices.set(id, child!);
    for (const backend of this.unnamedBackends) if (backend.node === filter) backend.node = child!;
    child!.users.delete(`parent ${filter.nodeName}`);
    this.nodes.delete(filter.nodeName);
  }

  deviceTookWrite(device: string): void {
    this.writingDevices.add(device);
  }

  /** QEMU's permission conflict for a new parent `parentName` taking the only write permission on `node`, when a device's BlockBackend on it writes. */
  deviceWriteConflict(node: BlockNode, parentName: string): string | null {
    for (const [id, device] of this.devices) {
      if (device === node && this.writingDevices.has(id)) return permissionConflict(node.nodeName, 'write', { name: `block device '${id}'`, role: 'root' }, fileChildUser(parentName));
    }
    return null;
  }

  /** QEMU's permission conflict for a new writer on `node`, when a parent (a format or filter node) unshares writes. */
  writeConflict(node: BlockNode): string | null {
    const parent = this.parentAsFile(node, unsharesFileWrite);
    return parent && permissionConflict(node.nodeName, 'write', UNNAMED_BACKEND, fileChildUser(parent.nodeName));
  }

  /** QEMU's permission conflict for a new user of `node` that forbids resizing it, when a writable parent grows it. */
  resizeConflict(node: BlockNode): string | null {
    const parent = this.parentAsFile(node, (candidate) => this.childResize(candidate) === 'grows');
    return parent && permissionConflict(node.nodeName, 'resize', fileChildUser(parent.nodeName), UNNAMED_BACKEND);
  }

  /** QEMU's permission conflict for a new writer that also resizes `node` (blockdev-create's), when a parent unshares both. */
  writeResizeConflict(node: BlockNode): string | null {
    const parent = this.parentAsFile(node, unsharesFileWrite);
    return parent && permissionConflict(node.nodeName, 'write, resize', UNNAMED_BACKEND, fileChildUser(parent.nodeName));
  }

  /** Whether writes to `node` end on a read-only node: its own flag, or its data child's through a driver that passes writes down (raw, filters). */
  private writesEndReadOnly(node: BlockNode): boolean {
    if (node.readOnly) return true;
    const spec = driverSpec(node.driver.format);
    const child = node.children[0];
    return !!spec?.childOption && !spec.claimsFile && child !== undefined && this.writesEndReadOnly(child);
  }

  /**
   * QEMU's permission conflict over resizing `file` for a user of it as its `file` child that
   * grows it (a writable format) or forbids growing it (a raw window): another such user, or
   * for one that grows it, an export (whose BlockBackend does not share resizing); or null.
   */
  fileResizeConflict(file: BlockNode, nodeName: string, use: ChildResize): string | null {
    if (!use) return null;
    for (const parent of this.nodes.values()) {
      if (parent.nodeName === nodeName || parent.children[0] !== file) continue;
      const other = this.childResize(parent);
      if (use === 'forbids' && other === 'grows') return permissionConflict(file.nodeName, 'resize', fileChildUser(parent.nodeName), fileChildUser(nodeName));
      if (use === 'grows' && other === 'forbids') return permissionConflict(file.nodeName, 'resize', fileChildUser(nodeName), fileChildUser(parent.nodeName));
    }
    const exported = [...file.users].some((user) => user.startsWith('export '));
    if (use === 'grows' && exported) return permissionConflict(file.nodeName, 'resize', fileChildUser(nodeName), UNNAMED_BACKEND);
    return null;
  }

  /** What the node needs of its `file` child's size, read-only or not as it is (or will be). */
  childResize(node: BlockNode, readOnly = node.readOnly): ChildResize {
    const spec = driverSpec(node.driver.format);
    const options = this.nodeOptions.get(node);
    return options && spec?.childResize?.(options, readOnly);
  }

  private parentAsFile(node: BlockNode, matches: (parent: BlockNode) => boolean): BlockNode | null {
    for (const parent of this.nodes.values()) if (parent.children[0] === node && matches(parent)) return parent;
    return null;
  }

  /** The image lock the node's driver claims through its file child (QEMU's format drivers keeping metadata there), if it claims one. */
  claimedLock(node: BlockNode): HostLock | undefined {
    return driverSpec(node.driver.format)?.claimsFile ? node.children[0]?.hostLock() : undefined;
  }

  /** A -drive BlockBackend's cache mode (cache=writethrough|directsync): the device waits for each write to be flushed. */
  isWritethrough(device: string): boolean {
    return this.writethroughDevices.has(device);
  }

  /** blockdev-del, with QEMU's checks in QEMU's order. */
  deleteBlockdev(nodeName: string): void {
    const node = this.nodes.get(nodeName);
    if (!node) throw new QmpError(`Failed to find node with node-name='${nodeName}'`);
    if ([...node.users].some((user) => !user.startsWith('parent '))) throw new QmpError(`Node ${nodeName} is in use`);
    refuse(this.backingBlocker(node));
    if (!node.monitorOwned) throw new QmpError(`Node ${nodeName} is not owned by the monitor`);
    if (node.users.size > 0) throw new QmpError(`Block device ${nodeName} is in use`);
    this.close(node);
  }

  /** Stores persistent bitmaps and closes every node: the daemon is going away. */
  closeAll(): void {
    for (const node of this.allNodes()) {
      if (this.nodes.has(node.nodeName) && !hasParent(node)) this.close(node);
    }
    for (const node of this.allNodes()) this.close(node);
    this.devices.clear();
  }

  /**
   * Opens a node in QEMU's order: its child, the checks on the members all
   * drivers share, the node name, the driver's own option checks, the driver.
   * `given` holds the options as the user wrote them (strings from -drive),
   * which is how QEMU prints them in a `json:` filename.
   */
  private open(options: BlockdevOptions, monitorOwned: boolean, given: object = options): BlockNode {
    const spec = driverSpec(options.driver);
    if (!spec) throw new QmpError(`Driver '${options.driver}' is not supported by qblockd`);
    const readOnly = options['read-only'] === true;
    const givenMembers = given as Record<string, unknown>;
    const members = options as Record<string, unknown>;
    const opened: BlockNode[] = [];
    const childOf = (member: string | undefined) => {
      const reference = member && members[member];
      if (!reference) return undefined;
      const node = this.resolveChild(reference as BlockdevRef, readOnly, givenMembers[member]);
      opened.push(node);
      return node;
    };
    let claimedChild = false;
    const firstOpened = this.nodes.size;
    const child = childOf(spec.childOption);
    // QEMU opens a format node's `file` through a BlockBackend of its own first, to probe the format.
    if (child && !spec.protocol) this.backendDetached(child);
    let node: BlockNode;
    try {
      const extras = Object.fromEntries((spec.extraChildren ?? []).map((member) => [member, childOf(member)!]));
      refuse(firstProblem(COMMON_RULES, options));
      const nodeName = this.assignNodeName(options['node-name']);
      const nodeExists = (name: string) => this.devices.has(name) || this.nodes.has(name);
      refuse(firstProblem(spec.rules, options, { childSize: child && BigInt(child.size()), nodeExists }));
      const description = describe(spec, options, givenMembers, child && this.descriptions.get(child));
      // A writable format node writes its file child: QEMU refuses a read-only one before any lock or header read.
      if (child && spec.claimsFile && !readOnly && this.writesEndReadOnly(child)) throw new QmpError('Block node is read-only');
      if (child && spec.claimsFile) {
        child.hostLock()?.claim(lockMode(readOnly));
        claimedChild = true;
      }
      const childLink = child?.asChild();
      const extra = Object.fromEntries(Object.entries(extras).map(([member, node]) => [member, node.asChild()]));
      const filename = () => filenameFrom(description);
      const filenameWith = (changed: Record<string, unknown>) => `json:${toQmpJson({ ...description.openOptions, ...changed })}`;
      if (child) refuse(this.fileResizeConflict(child, nodeName, spec.childResize?.(options, readOnly)));
      if (child && spec.unsharesFileWrite) refuse(this.deviceWriteConflict(child, nodeName));
      const driver = spec.open({ options, child: childLink, readOnly, filename, extra, extraNodes: extras, graph: this, nodeName, filenameWith });
      const settings = {
        direct: options.cache?.direct === true,
        noFlush: options.cache?.['no-flush'] === true,
        detectZeroes: options['detect-zeroes'] ?? 'off',
      };
      node = new BlockNode(nodeName, driver, opened, readOnly, monitorOwned, settings);
      if (childLink) node.links.push(childLink);
      node.links.push(...Object.values(extra));
      try {
        this.loadPersistentBitmaps(node);
      } catch (error) {
        driver.close();
        throw error;
      }
      this.nodes.set(nodeName, node);
      // A protocol driver opens its child itself, once QEMU named the node: the child's nodes are the newer.
      if (spec.protocol) for (const [name, opened] of [...this.nodes].slice(firstOpened, -1)) this.nodes.delete(name) && this.nodes.set(name, opened);
      this.descriptions.set(node, description);
      this.nodeOptions.set(node, options);
      for (const used of opened) used.users.add(`parent ${nodeName}`);
      this.attachInternalBitmaps(node);
    } catch (error) {
      if (claimedChild) child!.hostLock()?.release(lockMode(readOnly));
      // Children this call created go with it; a node it only referred to (a device's, say) stays.
      for (const used of opened) if (!used.monitorOwned && used.users.size === 0) this.close(used);
      throw error;
    }
    if (node.driver.backingChain) {
      try {
        this.openBacking(node, (options as DriverOptions<'qcow2'>).backing);
      } catch (error) {
        this.close(node);
        throw error;
      }
    }
    const unused = unusedOption(givenMembers);
    if (unused !== undefined) {
      this.close(node);
      const refusal = spec.protocol ? `Block protocol '${options.driver}' doesn't support` : `Block format '${options.driver}' does not support`;
      throw new QmpError(`${refusal} the option '${unused}'`);
    }
    return node;
  }

  /**
   * QEMU opens the backing child once the node itself is open: the node named
   * by reference, defined in place (read-only unless it says otherwise), none
   * for null, or by default the file the image names, in the format it names.
   */
  private openBacking(node: BlockNode, reference: BlockdevRefOrNull | undefined): void {
    const chain = node.driver.backingChain!;
    const description = this.descriptions.get(node)!;
    description.autoBackingFile = chain.backingFile;
    if (reference === undefined && chain.backingFile === '') return;
    if (reference !== null) {
      let backing: BlockNode;
      try {
        backing = reference === undefined ? this.openNamedBacking(chain) : this.resolveChild(reference, true, reference);
      } catch (error) {
        throw new QmpError(`Could not open backing file: ${(error as Error).message}`);
      }
      if (reference === undefined) description.autoBackingFile = this.filenameOf(backing);
      this.attachBacking(node, backing);
    }
    this.refreshFilename(node);
  }

  /**
   * The backing file an image names, opened read-only in the format it names (probed where
   * it names none); a `json:` name gives the options to open it with.
   */
  private openNamedBacking(chain: BackingChainDriver): BlockNode {
    const filename = chain.fullBackingFilename();
    if (filename.startsWith('json:')) {
      const given = jsonFilenameOptions(filename.slice('json:'.length), chain.backingFormat);
      // Options QAPI does not check: a missing child gets the block layer's words, not the schema's.
      const child = driverSpec(given.driver as BlockdevDriver)?.childOption;
      if (child && given[child] === undefined) throw new QmpError(`A block device must be specified for "${child}"`);
      return this.open(this.readOptions(given), false, given);
    }
    const driver = chain.backingFormat ?? probeFormat(filename);
    return this.open({ driver, 'read-only': true, file: { driver: 'file', filename } } as BlockdevOptions, false);
  }

  /** Makes `backing` the node's backing child: reads of its unallocated clusters go there. */
  attachBacking(node: BlockNode, backing: BlockNode): void {
    if (!node.driver.backingChain) throw new QmpError(`Driver '${node.driver.format}' of node '${node.nodeName}' does not support backing files`);
    node.backing = backing;
    backing.users.add(`parent ${node.nodeName}`);
    node.driver.backingChain!.setBacking(backing);
    this.refreshFilename(node);
  }

  detachBacking(node: BlockNode): void {
    const backing = node.backing!;
    node.backing = undefined;
    backing.users.delete(`parent ${node.nodeName}`);
    node.driver.backingChain!.setBacking(undefined);
    this.refreshFilename(node);
  }

  /** blockdev-reopen's new backing child, or none: the old one goes when the monitor did not add it and nothing else uses it, as in QEMU. */
  replaceBacking(node: BlockNode, backing: BlockNode | null): void {
    const old = node.backing;
    if (old === (backing ?? undefined)) return;
    if (old) {
      this.detachBacking(node);
      if (!old.monitorOwned && old.users.size === 0) this.close(old);
    }
    if (backing) this.attachBacking(node, backing);
  }

  /** The node whose backing `node` is, if any. */
  backingParentOf(node: BlockNode): BlockNode | undefined {
    for (const parent of this.nodes.values()) if (parent.backing === node) return parent;
    return undefined;
  }

  /** QEMU's op blocker on a backing node: the error for snapshotting or deleting it, or null. */
  backingBlocker(node: BlockNode): string | null {
    const parent = this.backingParentOf(node);
    return parent ? `Node '${node.nodeName}' is busy: node is used as backing hd of '${parent.nodeName}'` : null;
  }

  /**
   * Moves every device (-drive BlockBackend) and every parent node on `from` to `to`, as
   * QEMU's bdrv_replace_node does for a snapshot: a filter or format node above `from`
   * reads and writes `to` from now on, and its filename says so. `to`'s backing link to
   * `from` stays.
   */
  replaceNode(from: BlockNode, to: BlockNode): void {
    for (const [id, device] of this.devices) {
      if (device !== from) continue;
      this.devices.set(id, to);
      from.users.delete(`device ${id}`);
      to.users.add(`device ${id}`);
    }
    for (const parent of [...this.nodes.values()]) if (parent.links.some((link) => link.node === from)) this.moveLinks(parent, from, to);
  }

  /** blockdev-reopen named another node as the node's `file`: the old child goes when the monitor did not add it and nothing else uses it. */
  replaceFile(node: BlockNode, file: BlockNode): void {
    const old = node.children[0]!;
    this.moveLinks(node, old, file);
    if (!old.monitorOwned && old.users.size === 0) this.close(old);
  }

  /** The parent's links to `from` go to `to`, with its claim on the image file, its internal bitmaps and its filename. */
  private moveLinks(parent: BlockNode, from: BlockNode, to: BlockNode): void {
    // The parent's unnamed bitmaps stay where they are, as QEMU's copy-before-write keeps its copy bitmap on the old node.
    const mode = lockMode(parent.readOnly);
    this.claimedLock(parent)?.release(mode);
    for (const link of parent.links) if (link.node === from) link.node = to;
    parent.children.forEach((child, index) => child === from && (parent.children[index] = to));
    this.claimedLock(parent)?.claim(mode);
    from.users.delete(`parent ${parent.nodeName}`);
    to.users.add(`parent ${parent.nodeName}`);
    this.redescribe(parent);
  }

  /** blockdev-reopen changed options that name the node (a raw window's offset and size): its filename, and those above it, say so. */
  describeAgain(node: BlockNode, options: BlockdevOptions): void {
    const spec = driverSpec(node.driver.format)!;
    const description = this.descriptions.get(node)!;
    // Without its child: redescribe puts the child's options in, as it does for a moved child.
    const fresh = describe(spec, options, options as Record<string, unknown>, undefined);
    description.openOptions = fresh.openOptions;
    description.strongGiven = fresh.strongGiven;
    this.redescribe(node);
  }

  /** A node's filename once a child of it moved, and the filenames above it that name it. */
  private redescribe(node: BlockNode): void {
    const spec = driverSpec(node.driver.format)!;
    // A job's filter has no description: its driver names it after its child.
    const description = this.descriptions.get(node);
    if (description) {
      const childNode = spec.childOption && node.links[0]?.node;
      const child = childNode ? this.descriptions.get(childNode) : undefined;
      if (child) description.openOptions[spec.childOption!] = child.openOptions;
      description.ownPlainFilename = spec.plainFilename(this.nodeOptions.get(node)!, child, description.strongGiven);
      if (node.driver.backingChain) this.refreshFilename(node);
      else description.plainFilename = description.ownPlainFilename;
    }
    for (const parent of this.nodes.values()) {
      if (parent.backing === node || parent.links.some((link) => link.node === node)) this.redescribe(parent);
    }
  }

  /** The node's filename as query output shows it: plain, or `json:` and its options. */
  filenameOf(node: BlockNode): string {
    return filenameFrom(this.descriptions.get(node)!);
  }

  /**
   * A node whose backing is not the file its image names (a different node, or
   * none) is named by its options, the backing's included, as QEMU names it.
   */
  private refreshFilename(node: BlockNode): void {
    const description = this.descriptions.get(node)!;
    const backingFilename = node.backing ? this.filenameOf(node.backing) : '';
    if (description.autoBackingFile === backingFilename) {
      delete description.openOptions.backing;
      description.plainFilename = description.ownPlainFilename;
    } else {
      description.openOptions.backing = node.backing ? this.descriptions.get(node.backing)!.openOptions : null;
      description.plainFilename = undefined;
    }
  }

  /** A child defined in place inherits read-only and, as in QEMU, `discard: unmap`. */
  private resolveChild(reference: BlockdevRef, readOnly: boolean, given: unknown): BlockNode {
    if (typeof reference === 'string') {
      return this.findDeviceOrNode(reference);
    }
    const nested = { ...reference };
    if (readOnly && nested['read-only'] === undefined) nested['read-only'] = true;
    if (nested.discard === undefined) nested.discard = 'unmap';
    return this.open(nested, false, typeof given === 'object' && given !== null ? given : reference);
  }

  private assignNodeName(requested: string | undefined): string {
    if (requested === undefined) return this.generateNodeName();
    this.checkNodeName(requested);
    return requested;
  }

  private checkNodeName(requested: string): void {
    if (!isWellFormedId(requested)) throw new QmpError(`Invalid node-name: '${requested}'`);
    if (this.devices.has(requested)) throw new QmpError(`node-name=${requested} is conflicting with a device id`);
    if (this.nodes.has(requested)) throw new QmpError(`Duplicate nodes with node-name='${requested}'`);
    if (requested.length > NODE_NAME_MAX) throw new QmpError('Node name too long');
  }

  /** QEMU's generated names, for a node opened without one: "#block", a counter, two random digits. */
  generateNodeName(): string {
    const random = String(Math.floor(Math.random() * 100)).padStart(2, '0');
    return `#block${this.generatedIds++}${random}`;
  }

  private loadPersistentBitmaps(node: BlockNode): void {
    const store = node.driver.bitmapStore;
    if (!store) return;
    const loaded = store.loadBitmaps();
    for (const stored of loaded) {
      const data = new BitmapData({ diskSize: node.size(), granularity: stored.granularity });
      if (!stored.inUse) stored.loadInto(data);
      node.addBitmap(
        new DirtyBitmap(stored.name, data, {
          enabled: stored.enabled && !stored.inUse,
          persistent: true,
          readonly: node.readOnly,
          inconsistent: stored.inUse,
        }),
      );
    }
    if (!node.readOnly && loaded.some((stored) => !stored.inUse)) store.markInUse();
  }

  /** Writes back what persists, closes the driver and lets go of implicit children. */
  private close(node: BlockNode): void {
    if (!this.nodes.has(node.nodeName)) return;
    try {
      storePersistentBitmaps(node);
    } finally {
      node.driver.close();
      this.detachInternalBitmaps(node);
      this.claimedLock(node)?.release(lockMode(node.readOnly));
      this.nodes.delete(node.nodeName);
      for (const child of node.children) {
        child.users.delete(`parent ${node.nodeName}`);
        if (!child.monitorOwned && child.users.size === 0) this.close(child);
      }
      const backing = node.backing;
      if (backing) {
        backing.users.delete(`parent ${node.nodeName}`);
        if (!backing.monitorOwned && backing.users.size === 0) this.close(backing);
      }
    }
  }
}

/**
 * QEMU flattens a node's options and, once the node is open, refuses any the driver left
 * unused. An empty object or list stays whole in the flattening and nothing takes it
 * (`cache: {}`, blkdebug's `inject-error: []`): the first in QDict order is named.
 */
function unusedOption(given: Record<string, unknown>): string | undefined {
  const isEmpty = (value: unknown) => typeof value === 'object' && value !== null && Object.keys(value).length === 0;
  return qdictKeyOrder(Object.keys(given)).find((member) => isEmpty(given[member]));
}

export function storePersistentBitmaps(node: BlockNode): void {
  const store = node.driver.bitmapStore;
  if (!store || node.readOnly) return;
  const toStore = node.bitmaps
    .filter((bitmap) => bitmap.persistent && !bitmap.readonly && !bitmap.inconsistent && !bitmap.skipStore)
    .map((bitmap) => ({ name: bitmap.name, granularity: bitmap.granularity, enabled: bitmap.enabled, data: bitmap.data }));
  if (toStore.length > 0) store.storeBitmaps(toStore);
}

function lockMode(readOnly: boolean): HostLockMode {
  return readOnly ? 'read' : 'write';
}

function hasParent(node: BlockNode): boolean {
  return [...node.users].some((user) => user.startsWith('parent '));
}

/** The table's entry for one driver, typed for that driver's options. */
function driverSpec<D extends BlockdevDriver>(driver: D): DriverSpec<DriverOptions<D>> | undefined {
  return DRIVERS[driver];
}

/** Whether the node takes the only write permission on its `file` child. */
export function unsharesFileWrite(node: BlockNode): boolean {
  return driverSpec(node.driver.format as BlockdevDriver)?.unsharesFileWrite === true;
}

function describe<Options extends BlockdevOptions>(
  spec: DriverSpec<Options>,
  options: Options,
  given: Record<string, unknown>,
  child: NodeDescription | undefined,
): NodeDescription {
  const strong = spec.strongOptions.filter((key) => given[key] !== undefined);
  const openOptions: Record<string, unknown> = { driver: options.driver };
  for (const key of strong) flattenInto(openOptions, key, given[key]);
  if (child) openOptions[spec.childOption!] = child.openOptions;
  const strongGiven = strong.length > 0;
  const plainFilename = spec.plainFilename(options, child, strongGiven);
  return { openOptions, plainFilename, ownPlainFilename: plainFilename, strongGiven, protocol: spec.protocol === true };
}

/** QEMU keeps a list option flattened in the node's options (`inject-error.0.event`), and so names it in a `json:` filename. */
function flattenInto(target: Record<string, unknown>, key: string, value: unknown): void {
  if (!Array.isArray(value)) {
    target[key] = value;
    return;
  }
  value.forEach((item: unknown, index) => {
    if (typeof item !== 'object' || item === null) target[`${key}.${index}`] = item;
    else for (const [member, memberValue] of Object.entries(item)) flattenInto(target, `${key}.${index}.${member}`, memberValue);
  });
}

function filenameFrom(description: NodeDescription): string {
  return description.plainFilename ?? `json:${toQmpJson(description.openOptions)}`;
}
