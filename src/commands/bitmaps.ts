import {
  lookupBitmap,
  prepareAdd,
  prepareClear,
  prepareMerge,
  prepareRemove,
  prepareSetEnabled,
  type PreparedAction,
} from '../block/bitmap/actions.ts';
import type { BlockGraph } from '../block/graph.ts';
import { runTransaction, type ActionDefinition, type CompletionMode, type TransactionActionRequest } from '../block/transaction.ts';
import { QmpError } from '../qmp/errors.ts';
import type { CommandTable } from '../qmp/dispatcher.ts';
import type { DaemonServices } from './services.ts';

/**
 * The six bitmap operations, each usable as a command and as a transaction action;
 * `undoable` is true only inside a transaction, the one place an abort can follow.
 */
function bitmapActions(graph: BlockGraph): Record<string, (args: any, undoable: boolean) => PreparedAction> {
  return {
    'block-dirty-bitmap-add': (args) => prepareAdd(graph, args),
    'block-dirty-bitmap-remove': (args) => prepareRemove(graph, args),
    'block-dirty-bitmap-clear': (args, undoable) => prepareClear(graph, args, undoable),
    'block-dirty-bitmap-enable': (args) => prepareSetEnabled(graph, args, true),
    'block-dirty-bitmap-disable': (args) => prepareSetEnabled(graph, args, false),
    'block-dirty-bitmap-merge': (args, undoable) => prepareMerge(graph, args, undoable),
  };
}

export function bitmapCommands({ graph }: DaemonServices): CommandTable {
  const actions = bitmapActions(graph);
  const transactionActions: Record<string, ActionDefinition> = {
    abort: {
      individualOnly: false,
      prepare() {
        throw new QmpError('Transaction aborted using Abort action');
      },
    },
  };
  const commands: CommandTable = {};
  for (const [name, prepare] of Object.entries(actions)) {
    commands[name] = (args) => {
      prepare(args, false).commit();
      return {};
    };
    transactionActions[name] = { individualOnly: true, prepare: (args) => prepare(args, true) };
  }
  return {
    ...commands,
    'x-debug-block-dirty-bitmap-sha256'(args: { node: string; name: string }) {
      return { sha256: lookupBitmap(graph, args.node, args.name).bitmap.data.sha256() };
    },
    transaction(args: { actions: TransactionActionRequest[]; properties?: { 'completion-mode'?: CompletionMode } }) {
      runTransaction(args.actions, args.properties?.['completion-mode'] ?? 'individual', transactionActions);
      return {};
    },
  };
}
