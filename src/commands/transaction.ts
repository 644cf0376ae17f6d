import { runTransaction, type TransactionActionTable } from '../block/transaction.ts';
import type { ActionCompletionMode, TransactionAction } from '../schema/generated/qapi-types.ts';
import type { DaemonServices } from './services.ts';

/**
 * Runs actions as QEMU's qmp_transaction does, for `transaction` and for the
 * commands QEMU runs as a transaction of one (blockdev-backup, drive-backup,
 * blockdev-snapshot, blockdev-snapshot-sync): every job pauses and resumes
 * first, as every node is drained.
 */
export function transact(services: DaemonServices, actions: TransactionAction[], completionMode: ActionCompletionMode, table: TransactionActionTable): void {
  const { graph, jobs } = services;
  runTransaction(actions, completionMode, table, () => jobs.drainAll(graph.allNodes().reverse()));
}
