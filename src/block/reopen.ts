import { QmpError } from '../qmp/errors.ts';
import { qdictKeyOrder } from '../qmp/qdict-order.ts';
import { detectZeroesRule, firstProblem, RAW_RULES } from './drivers/option-rules.ts';
import type { HostLockMode } from './drivers/driver.ts';
import { storePersistentBitmaps, unsharesFileWrite, type BlockGraph } from './graph.ts';
import type { BlockNode, NodeSettings } from './node.ts';
import type { BlockdevDriver, BlockdevOptions, BlockdevOptionsRaw, BlockdevOptionsThrottle } from '../schema/generated/qapi-types.ts';
import type { ThrottleDriver } from './drivers/throttle.ts';
import type { RawDriver } from './drivers/raw.ts';
import { fileChildUser, permissionConflict } from './permission-conflict.ts';

/**
 * What a driver does with its own options on blockdev-reopen. A driver not in
 * the table has no reopen handler in QEMU 7.2 and refuses every reopen.
 */
interface ReopenRule {
  /** Options the driver takes on reopen: they may change. Any other option must keep its value. */
  changeable: readonly string[];
  /** Options that go back to their default when left out; leaving out any other option given before is refused. */
  resettable: readonly string[];
  /**
   * The driver's own checks of its new options (QEMU's bdrv_reopen_prepare of the driver),
   * against the `file` child the node will have; returns what commit applies.
   */
  prepare?(graph: BlockGraph, node: BlockNode, options: BlockdevOptions, file: BlockNode | undefined): () => void;
}

const QCOW2_RUNTIME_OPTIONS = [
  'lazy-refcounts',
  'pass-discard-request',
  'pass-discard-snapshot',
  'pass-discard-other',
  'cache-size',
  'l2-cache-size',
  'l2-cache-entry-size',
  'refcount-cache-size',
  'cache-clean-interval',
];
const TAKES_NOTHING: ReopenRule = { changeable: [], resettable: [] };

const REOPEN_RULES: { [D in BlockdevDriver]?: ReopenRule } = {
  file: { changeable: ['drop-cache', 'x-check-cache-dropped'], resettable: [] },
  qcow2: { changeable: QCOW2_RUNTIME_OPTIONS, resettable: QCOW2_RUNTIME_OPTIONS },
  raw: {
    changeable: ['offset', 'size'],
    resettable: ['offset', 'size'],
    prepare(graph, node, options, file) {
      const problem = firstProblem(RAW_RULES, options as BlockdevOptionsRaw, { childSize: BigInt(file!.size()) });
      // QEMU's raw takes its permissions from the window it has, not the one it gets: no conflict is checked here.
      if (problem) throw new QmpError(problem);
      return () => {
        (node.driver as RawDriver).setWindow(options as BlockdevOptionsRaw);
        graph.describeAgain(node, options);
      };
    },
  },
  'null-co': TAKES_NOTHING,
  'null-aio': TAKES_NOTHING,
  blkdebug: TAKES_NOTHING,
  throttle: {
    changeable: ['throttle-group'],
    resettable: [],
    prepare(graph, node, options) {
      const group = graph.objects.throttleGroupFor((options as BlockdevOptionsThrottle)['throttle-group']);
      return () => (node.driver as ThrottleDriver).switchGroup(group);
    },
  },
};

/** The block layer's own options: every driver takes them on reopen, and leaving them out resets them. */
const GENERIC_OPTIONS = new Set(['read-only', 'auto-read-only', 'cache.direct', 'cache.no-flush', 'discard', 'detect-zeroes']);
/**
 * The node keeps its name when it is left out; given, it must be the name the node was
 * opened with (a generated name was not, so naming it is a change).
 */
const NODE_NAME = 'node-name';

/** QEMU keeps these as strings among a node's options, so no JSON value given on reopen ever equals them. */
const NEVER_EQUAL = new Set(['force-share']);

/** Members that name a child, per driver, by the child's place among the node's children; a backing child is named `backing`. */
const CHILD_MEMBERS: { [D in BlockdevDriver]?: readonly string[] } = {
  qcow2: ['file'],
  raw: ['file'],
  blkdebug: ['image'],
  throttle: ['file'],
};

/** One node's pending reopen. */
interface ReopenEntry {
  node: BlockNode;
  /** The options as given (or inherited, for a child the parent reopens with it). */
  options: BlockdevOptions;
  readOnly: boolean;
  settings: NodeSettings;
  /** Given anew (not kept from before) without `backing`: refused where the node has or names a backing file. */
  backingMissing: boolean;
  /** The backing child the options name in place of the current one (null: none), once prepare has checked it. */
  newBacking?: BlockNode | null;
  /** The node the options name as `file` in place of the current child, once prepare has checked it. */
  newFile?: BlockNode;
  /** Set by the driver's own prepare: applies its new options. */
  applyDriverOptions?: () => void;
}

/** What blockdev-reopen needs from outside the graph. */
export interface ReopenContext {
  /** Whether a user outside the graph writes to the node (a writable export, a job's target). */
  writtenFromOutside(node: BlockNode): boolean;
  /** The queued nodes are drained while the reopen runs, whether it succeeds or not: their jobs pause and resume. */
  drain(nodes: BlockNode[]): void;
}

/**
 * blockdev-reopen: every node of the list (and the children it created inline)
 * is checked against its new options first; only when all of them, and the
 * permissions of the graph they leave, pass does anything change. QEMU 7.2
 * already stores and write-protects a node's bitmaps while it checks a switch
 * to read-only and keeps that when a later check fails; qblockd changes nothing
 * (README, "Differences from QEMU 7.2").
 */
export function reopenNodes(graph: BlockGraph, list: readonly BlockdevOptions[], context: ReopenContext): void {
  const queue = buildQueue(graph, list);
  context.drain([...queue.keys()]);
  for (const entry of queue.values()) prepare(graph, entry);
  checkWriters(graph, queue, context);
  const undoLocks = switchHostLocks(graph, queue);
  try {
    commit(graph, [...queue.values()]);
  } catch (error) {
    undoLocks();
    throw error;
  }
}

/** The queue in QEMU's order: the list's nodes (a later entry for the same node adds to it), each followed by its inline children. */
function buildQueue(graph: BlockGraph, list: readonly BlockdevOptions[]): Map<BlockNode, ReopenEntry> {
  const given = new Map<BlockNode, BlockdevOptions>();
  for (const options of list) {
    const name = options['node-name'];
    if (name === undefined) throw new QmpError('node-name not specified');
    const node = graph.findNode(name);
    if (!node) throw new QmpError(`Failed to find node with node-name='${name}'`);
    given.set(node, { ...given.get(node), ...options });
  }
  const queue = new Map<BlockNode, ReopenEntry>();
  const enqueue = (node: BlockNode, options: BlockdevOptions, keptOptions: boolean) => {
    const backingMissing = !keptOptions && !('backing' in options);
    queue.set(node, { node, options, readOnly: options['read-only'] === true, settings: settingsOf(options), backingMissing });
    for (const [member, child] of childrenByMember(node)) {
      if (child.monitorOwned || graph.deviceNameOf(child) !== undefined) continue;
      const value = (options as Record<string, unknown>)[member];
      // Named by reference, the child keeps its options but for what the parent now says;
      // defined anew in place, its own options win and the rest is the parent's or the default.
      if (value === child.nodeName) enqueue(child, { ...graph.nodeOptions.get(child)!, ...inheritable(options, member) } as BlockdevOptions, true);
      else if (typeof value === 'object' && value !== null) enqueue(child, { 'read-only': false, ...inheritable(options, member), ...value } as BlockdevOptions, false);
    }
  };
  for (const [node, options] of given) enqueue(node, options, false);
  return queue;
}

/**
 * What a child inherits from its parent's options: the cache mode, where given, and
 * the read-only state; a backing child is read-only whatever its parent is, as QEMU opens it.
 */
function inheritable(parent: BlockdevOptions, member: string): Partial<BlockdevOptions> {
  const inherited: Partial<BlockdevOptions> = {};
  if (member === 'backing') inherited['read-only'] = true;
  else {
    if (parent['read-only'] !== undefined) inherited['read-only'] = parent['read-only'];
    if (parent['auto-read-only'] !== undefined) inherited['auto-read-only'] = parent['auto-read-only'];
  }
  if (parent.cache !== undefined) inherited.cache = parent.cache;
  return inherited;
}

function settingsOf(options: BlockdevOptions): NodeSettings {
  return {
    direct: options.cache?.direct === true,
    noFlush: options.cache?.['no-flush'] === true,
    detectZeroes: options['detect-zeroes'] ?? 'off',
  };
}

/** QEMU's bdrv_reopen_prepare checks, in its order; nothing changes here. */
function prepare(graph: BlockGraph, entry: ReopenEntry): void {
  const { node, options } = entry;
  const problem = detectZeroesRule(options);
  if (problem) throw new QmpError(problem);
  const rule = REOPEN_RULES[node.driver.format];
  if (!rule) throw new QmpError(`Block format '${node.driver.format}' used by node '${node.nodeName}' does not support reopening files`);
  const children = childrenByMember(node);
  const childMembers = new Set(children.map(([member]) => member));
  const before = flatten(graph.nodeOptions.get(node) ?? {});
  const after = flatten(options);
  // `backing` may be left out where the node neither has nor names a backing file (checked below).
  const kept = (key: string) => childMembers.has(key.split('.')[0]!) || key.split('.')[0] === 'backing';
  for (const key of qdictKeyOrder(Object.keys(before))) {
    if (key in after || key === NODE_NAME || GENERIC_OPTIONS.has(key) || rule.resettable.includes(key) || kept(key)) continue;
    throw new QmpError(`Option '${key}' cannot be reset to its default value`);
  }
  const backingChain = node.driver.backingChain;
  if (entry.backingMissing && backingChain && (node.backing || backingChain.backingFile !== '')) throw new QmpError(`backing is missing for '${node.nodeName}'`);
  entry.newBacking = checkChildReplacement(graph, node, 'backing', options, children);
  entry.newFile = checkChildReplacement(graph, node, 'file', options, children) ?? undefined;
  entry.applyDriverOptions = rule.prepare?.(graph, node, options, entry.newFile ?? node.children[0]);
  for (const key of qdictKeyOrder(Object.keys(after))) {
    if (GENERIC_OPTIONS.has(key) || rule.changeable.includes(key)) continue;
    const member = key.split('.')[0]!;
    const child = children.find(([name]) => name === member)?.[1];
    if (child && !child.monitorOwned && key !== member) continue;
    if (child && after[key] === child.nodeName) continue;
    if ((REPLACEABLE_CHILDREN as readonly string[]).includes(member) && key === member) continue;
    if (NEVER_EQUAL.has(key) || !jsonEqual(after[key], before[key])) throw new QmpError(`Cannot change the option '${key}'`);
  }
}

/** The children a reopen may point at another node (`backing` also at none), checked in this order. */
const REPLACEABLE_CHILDREN = ['backing', 'file'] as const;

/** QEMU lets `backing` and `file` name another node (`backing` also null): the node named now (null for none), undefined where it stays. */
function checkChildReplacement(
  graph: BlockGraph,
  node: BlockNode,
  member: (typeof REPLACEABLE_CHILDREN)[number],
  options: BlockdevOptions,
  children: Array<[string, BlockNode]>,
): BlockNode | null | undefined {
  const reference = (options as Record<string, unknown>)[member];
  const current = children.find(([name]) => name === member)?.[1];
  if (reference === undefined || (reference === null && !current)) return undefined;
  if (typeof reference === 'object' && reference !== null) return undefined;
  let target: BlockNode | null = null;
  if (typeof reference === 'string') {
    if (reference === current?.nodeName) return undefined;
    target = graph.findNode(reference) ?? null;
    if (!target) throw new QmpError(`Cannot find device='' nor node-name='${reference}'`);
    if (target === node || descendsFrom(target, node)) {
      throw new QmpError(`Making '${reference}' a ${member} child of '${node.nodeName}' would create a cycle`);
    }
  }
  return target;
}

function descendsFrom(node: BlockNode, ancestor: BlockNode): boolean {
  const below = node.backing ? [...node.children, node.backing] : node.children;
  return below.some((child) => child === ancestor || descendsFrom(child, ancestor));
}

/**
 * After every node has passed its own checks, the graph's: a node that is read-only
 * afterwards must have no user left that writes to it.
 */
function checkWriters(graph: BlockGraph, queue: Map<BlockNode, ReopenEntry>, context: ReopenContext): void {
  const readOnlyAfter = (node: BlockNode) => queue.get(node)?.readOnly ?? node.readOnly;
  const childrenAfter = (parent: BlockNode) => {
    const file = queue.get(parent)?.newFile;
    return file ? [file, ...parent.children.slice(1)] : parent.children;
  };
  const written = (node: BlockNode): boolean =>
    context.writtenFromOutside(node) ||
    graph.allNodes().some((parent) => {
      const role = CHILD_WRITES[parent.driver.format]?.[childrenAfter(parent).indexOf(node)];
      return !readOnlyAfter(parent) && (role === 'always' || (role === 'passed-on' && written(parent)));
    });
  for (const { node, newFile } of queue.values()) {
    if (!newFile) continue;
    const other = unsharesFileWrite(node) && graph.allNodes().find((parent) => parent !== node && unsharesFileWrite(parent) && childrenAfter(parent)[0] === newFile);
    if (other) throw new QmpError(permissionConflict(newFile.nodeName, 'write, resize', fileChildUser(other.nodeName), fileChildUser(node.nodeName)));
    const conflict = graph.fileResizeConflict(newFile, node.nodeName, graph.childResize(node, readOnlyAfter(node)));
    if (conflict) throw new QmpError(conflict);
  }
  for (const node of affectedNodes(graph, queue)) {
    if (!readOnlyAfter(node) || !written(node)) continue;
    if (node.readOnly) throw new QmpError('Block node is read-only');
    throw new QmpError(`Read-only block node '${node.nodeName}' cannot support read-write users`);
  }
}

/** The queued nodes and their children, whose writers may change. */
function affectedNodes(graph: BlockGraph, queue: Map<BlockNode, ReopenEntry>): BlockNode[] {
  const nodes = new Set<BlockNode>();
  for (const { node, newFile } of queue.values()) {
    nodes.add(node);
    for (const child of node.children) nodes.add(child);
    if (newFile) nodes.add(newFile);
  }
  return graph.allNodes().filter((node) => nodes.has(node)).reverse();
}

/**
 * When a writable parent writes to each of its children, by position: a format node
 * always (its metadata), a filter only what its own users write through it,
 * copy-before-write always to its target. snapshot-access only reads.
 */
const CHILD_WRITES: { [D in BlockdevDriver]?: ReadonlyArray<'always' | 'passed-on'> } = {
  qcow2: ['always'],
  raw: ['always'],
  blkdebug: ['passed-on'],
  'copy-before-write': ['passed-on', 'always'],
  throttle: ['passed-on'],
};

/** A format node's claim on its image file follows its read-only state; returns how to put the claims back. */
function switchHostLocks(graph: BlockGraph, queue: Map<BlockNode, ReopenEntry>): () => void {
  const done: Array<() => void> = [];
  const undo = () => {
    for (const step of done.reverse()) step();
  };
  try {
    for (const { node, readOnly } of queue.values()) {
      const lock = graph.claimedLock(node);
      if (!lock || readOnly === node.readOnly) continue;
      const [from, to] = [lockMode(node.readOnly), lockMode(readOnly)];
      lock.release(from);
      try {
        lock.claim(to);
      } catch (error) {
        lock.claim(from);
        throw error;
      }
      done.push(() => {
        lock.release(to);
        lock.claim(from);
      });
    }
  } catch (error) {
    undo();
    throw error;
  }
  return undo;
}

function lockMode(readOnly: boolean): HostLockMode {
  return readOnly ? 'read' : 'write';
}

/**
 * Applies every entry: nodes that become writable switch children first (a qcow2
 * image needs its file writable to mark its bitmaps in use); nodes that become
 * read-only store their bitmaps while they still can, parents first.
 */
function commit(graph: BlockGraph, entries: ReopenEntry[]): void {
  const byDepth = (a: ReopenEntry, b: ReopenEntry) => depth(a.node) - depth(b.node);
  const toWritable = entries.filter((entry) => entry.node.readOnly && !entry.readOnly).sort(byDepth);
  const toReadOnly = entries.filter((entry) => !entry.node.readOnly && entry.readOnly).sort((a, b) => byDepth(b, a));
  for (const { node } of toWritable) switchReadOnly(node, false);
  for (const { node } of toReadOnly) switchReadOnly(node, true);
  // Last, so that a failed switch above leaves the backing children as they were.
  for (const { node, newBacking, newFile } of entries) {
    if (newBacking !== undefined) graph.replaceBacking(node, newBacking);
    if (newFile) graph.replaceFile(node, newFile);
  }
  for (const entry of entries) {
    entry.applyDriverOptions?.();
    entry.node.settings = entry.settings;
    graph.nodeOptions.set(entry.node, entry.options);
  }
}

function depth(node: BlockNode): number {
  return node.children.length === 0 ? 0 : 1 + Math.max(...node.children.map(depth));
}

/**
 * Makes a node read-only or writable with what that means for its persistent
 * bitmaps: going read-only stores them (in-use cleared on disk) and write-protects
 * them; going writable lifts that and marks them in use on disk at once.
 * Permissions are the caller's business (blockdev-reopen checks them first).
 */
export function switchReadOnly(node: BlockNode, readOnly: boolean): void {
  if (node.readOnly === readOnly) return;
  const persistent = node.bitmaps.filter((bitmap) => bitmap.persistent);
  if (readOnly) {
    storePersistentBitmaps(node);
    node.driver.reopen?.(true);
    node.readOnly = true;
    for (const bitmap of persistent) bitmap.readonly = true;
    return;
  }
  node.driver.reopen?.(false);
  node.readOnly = false;
  for (const bitmap of persistent) bitmap.readonly = false;
  if (persistent.some((bitmap) => !bitmap.inconsistent)) node.driver.bitmapStore?.markInUse();
}

/** A node's children with the member that names each; the backing child first, as QEMU (attaching it last) lists it. */
function childrenByMember(node: BlockNode): Array<[string, BlockNode]> {
  const members = CHILD_MEMBERS[node.driver.format] ?? [];
  const children = node.children.flatMap((child, index) => (members[index] ? [[members[index], child] as [string, BlockNode]] : []));
  return node.backing ? [['backing', node.backing], ...children] : children;
}

/** QEMU flattens options to dotted keys (`cache.direct`, `file.filename`) before it compares them. */
function flatten(value: object, prefix = ''): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, member] of Object.entries(value)) {
    if (member === undefined) continue;
    if (typeof member === 'object' && member !== null) Object.assign(out, flatten(member, `${prefix}${key}.`));
    else out[prefix + key] = member;
  }
  return out;
}

/** QEMU's qobject_is_equal on option values: integers compare by value whatever their JSON spelling; types must match. */
function jsonEqual(a: unknown, b: unknown): boolean {
  const numeric = (value: unknown) => typeof value === 'number' || typeof value === 'bigint';
  return numeric(a) && numeric(b) ? BigInt(a as number) === BigInt(b as number) : a === b;
}
