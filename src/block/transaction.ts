import { QmpError } from '../qmp/errors.ts';
import type { PreparedAction } from './bitmap/actions.ts';

export interface TransactionActionRequest {
  type: string;
  data: Record<string, unknown>;
}

export type CompletionMode = 'individual' | 'grouped';

export interface ActionDefinition {
  /** Refuses `completion-mode: grouped`, as every bitmap action does. */
  individualOnly: boolean;
  prepare(data: any): PreparedAction;
}

/**
 * All or nothing: prepare every action in order; on the first failure abort
 * the prepared ones in reverse and report that failure; otherwise commit all.
 */
export function runTransaction(
  actions: TransactionActionRequest[],
  completionMode: CompletionMode,
  definitions: Record<string, ActionDefinition>,
): void {
  const prepared: PreparedAction[] = [];
  try {
    for (const action of actions) {
      const definition = definitions[action.type];
      if (!definition) throw new QmpError(`Transaction action '${action.type}' is not supported by qblockd`);
      if (definition.individualOnly && completionMode !== 'individual') {
        throw new QmpError(
          `Action '${action.type}' does not support Transaction property completion-mode = ${completionMode}`,
        );
      }
      prepared.push(definition.prepare(action.data));
    }
  } catch (error) {
    for (const action of prepared.reverse()) action.abort();
    throw error;
  }
  for (const action of prepared) action.commit();
}
