import { QmpError } from '../qmp/errors.ts';
import type { ActionCompletionMode, TransactionAction, TransactionActionKind } from '../schema/generated/qapi-types.ts';
import type { PreparedAction } from './bitmap/actions.ts';
import { JobGroup } from './jobs/job.ts';

/** Each action kind's `data`, as the schema declares it. */
export type TransactionActionData = { [K in TransactionActionKind]: Extract<TransactionAction, { type: K }>['data'] };

/** What every action of one transaction shares. */
export interface TransactionContext {
  completionMode: ActionCompletionMode;
  /** With completion-mode grouped, the jobs the actions create finish or fail together. */
  jobGroup: JobGroup | undefined;
}

export interface ActionDefinition<Data> {
  /** Refuses `completion-mode: grouped`, as every bitmap action does. */
  individualOnly: boolean;
  prepare(data: Data, context: TransactionContext): PreparedAction;
}

/** The actions qblockd implements; a kind missing here is refused. */
export type TransactionActionTable = { [K in TransactionActionKind]?: ActionDefinition<TransactionActionData[K]> };

/**
 * All or nothing: prepare every action in order; on the first failure abort
 * the prepared ones in reverse and report that failure; otherwise commit all.
 * Either way every prepared action is then cleaned up, in order. Before any
 * action is looked at, every node is drained (`drainAll`), as QEMU does.
 */
export function runTransaction(
  actions: TransactionAction[],
  completionMode: ActionCompletionMode,
  definitions: TransactionActionTable,
  drainAll: () => void,
): void {
  drainAll();
  const context: TransactionContext = { completionMode, jobGroup: completionMode === 'grouped' ? new JobGroup() : undefined };
  const prepared: PreparedAction[] = [];
  try {
    try {
      for (const action of actions) prepared.push(prepareAction(definitions, action.type, action.data, context));
    } catch (error) {
      for (const action of [...prepared].reverse()) action.abort();
      throw error;
    }
    for (const action of prepared) action.commit();
  } finally {
    for (const action of prepared) action.clean?.();
  }
}

function prepareAction<K extends TransactionActionKind>(
  definitions: TransactionActionTable,
  type: K,
  data: TransactionActionData[K],
  context: TransactionContext,
): PreparedAction {
  const definition = definitions[type];
  if (!definition) throw new QmpError(`Transaction action '${type}' is not supported by qblockd`);
  if (definition.individualOnly && context.completionMode !== 'individual') {
    throw new QmpError(`Action '${type}' does not support Transaction property completion-mode = ${context.completionMode}`);
  }
  return definition.prepare(data, context);
}
