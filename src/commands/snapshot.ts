import { createImage } from '../block/image-create.ts';
import type { BackingFileName } from '../block/drivers/qcow2/create.ts';
import type { BlockNode } from '../block/node.ts';
import { prepareSnapshot, prepareSnapshotSync } from '../block/snapshot.ts';
import type { TransactionActionTable } from '../block/transaction.ts';
import type { CommandTable } from '../qmp/dispatcher.ts';
import { imageCreationHost } from './backup.ts';
import type { DaemonServices } from './services.ts';
import { transact } from './transaction.ts';

/** blockdev-snapshot and blockdev-snapshot-sync, as transaction actions and as commands (a transaction of one). */
export function snapshotActions(services: DaemonServices): TransactionActionTable {
  const { graph, jobs, machine, exports } = services;
  const moveParents = (from: BlockNode, to: BlockNode) => {
    graph.replaceNode(from, to);
    machine.moveDisks(from, to);
    exports.moveNode(from, to);
  };
  const host = imageCreationHost(services);
  const createOverlayImage = (path: string, format: string, size: number, backing: BackingFileName) => createImage({ path, format, size, backing }, host);
  return {
    'blockdev-snapshot': { individualOnly: true, prepare: (args) => prepareSnapshot(graph, jobs, args, moveParents) },
    'blockdev-snapshot-sync': { individualOnly: true, prepare: (args) => prepareSnapshotSync(graph, jobs, args, createOverlayImage, moveParents) },
  };
}

export function snapshotCommands(services: DaemonServices) {
  const actions = snapshotActions(services);
  return {
    'blockdev-snapshot': (data) => (transact(services, [{ type: 'blockdev-snapshot', data }], 'individual', actions), {}),
    'blockdev-snapshot-sync': (data) => (transact(services, [{ type: 'blockdev-snapshot-sync', data }], 'individual', actions), {}),
  } satisfies Partial<CommandTable>;
}
