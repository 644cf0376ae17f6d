import {
  lookupBitmap,
  prepareAdd,
  prepareClear,
  prepareMerge,
  prepareRemove,
  prepareSetEnabled,
  type PreparedAction,
} from '../block/bitmap/actions.ts';
import type { ActionDefinition, TransactionActionTable } from '../block/transaction.ts';
import { transact } from './transaction.ts';
import { QmpError } from '../qmp/errors.ts';
import type { CommandTable } from '../qmp/dispatcher.ts';
import type { BlockDirtyBitmap, BlockDirtyBitmapAdd, BlockDirtyBitmapMerge, QapiEmpty } from '../schema/generated/qapi-types.ts';
import { backupActions } from './backup.ts';
import { snapshotActions } from './snapshot.ts';
import type { DaemonServices } from './services.ts';

const ABORT: ActionDefinition<unknown> = {
  individualOnly: false,
  prepare() {
    throw new QmpError('Transaction aborted using Abort action');
  },
};

/**
 * A bitmap operation's prepare step; `undoable` is true only inside a transaction,
 * the one place an abort can follow, so only there does it keep what an abort restores.
 */
type Prepare<Args> = (args: Args, undoable: boolean) => PreparedAction;

/** A bitmap operation run on its own: prepared and committed at once. */
function runAlone<Args>(prepare: Prepare<Args>): (args: Args) => QapiEmpty {
  return (args) => {
    prepare(args, false).commit();
    return {};
  };
}

/** A bitmap operation as a transaction action. */
function individualAction<Data>(prepare: Prepare<Data>): ActionDefinition<Data> {
  return { individualOnly: true, prepare: (data) => prepare(data, true) };
}

/** The six bitmap operations, each usable as a command and as a transaction action. */
export function bitmapCommands(services: DaemonServices) {
  const { graph } = services;
  const add = (args: BlockDirtyBitmapAdd) => prepareAdd(graph, args);
  const remove = (args: BlockDirtyBitmap) => prepareRemove(graph, args);
  const clear = (args: BlockDirtyBitmap, undoable: boolean) => prepareClear(graph, args, undoable);
  const enable = (args: BlockDirtyBitmap) => prepareSetEnabled(graph, args, true);
  const disable = (args: BlockDirtyBitmap) => prepareSetEnabled(graph, args, false);
  const merge = (args: BlockDirtyBitmapMerge, undoable: boolean) => prepareMerge(graph, args, undoable);
  const transactionActions: TransactionActionTable = {
    abort: ABORT,
    'block-dirty-bitmap-add': individualAction(add),
    'block-dirty-bitmap-remove': individualAction(remove),
    'block-dirty-bitmap-clear': individualAction(clear),
    'block-dirty-bitmap-enable': individualAction(enable),
    'block-dirty-bitmap-disable': individualAction(disable),
    'block-dirty-bitmap-merge': individualAction(merge),
    ...backupActions(services),
    ...snapshotActions(services),
  };
  return {
    'block-dirty-bitmap-add': runAlone(add),
    'block-dirty-bitmap-remove': runAlone(remove),
    'block-dirty-bitmap-clear': runAlone(clear),
    'block-dirty-bitmap-enable': runAlone(enable),
    'block-dirty-bitmap-disable': runAlone(disable),
    'block-dirty-bitmap-merge': runAlone(merge),
    'x-debug-block-dirty-bitmap-sha256'(args) {
      return { sha256: lookupBitmap(graph, args.node, args.name).bitmap.data.sha256() };
    },
    transaction(args) {
      transact(services, args.actions, args.properties?.['completion-mode'] ?? 'individual', transactionActions);
      return {};
    },
  } satisfies Partial<CommandTable>;
}
