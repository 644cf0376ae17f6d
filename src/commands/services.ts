import type { BlockGraph } from '../block/graph.ts';
import type { ExportManager } from '../block/exports.ts';
import type { NbdServer } from '../nbd/server.ts';
import type { JobList } from '../block/jobs/job-list.ts';
import type { RunState } from '../block/run-state.ts';
import type { Machine } from '../machine/machine.ts';
import type { Schema, SchemaView } from '../schema/index.ts';
import type { SessionView } from '../qmp/dispatcher.ts';
import type { EventData, EventName, VersionInfo, XQblockdClientInfo } from '../schema/generated/qapi-types.ts';

/** The clients that asked for qblockd's change notifications (x-qblockd-watch). */
export interface Watchers {
  watch(session: SessionView): void;
  /** Ordinary clients are shown QEMU's commands only; watchers see qblockd's x- commands too. */
  schemaView(session: SessionView): SchemaView;
  clients(): XQblockdClientInfo[];
}

/** What command handlers drive: the block layer, exports, events and the daemon's lifecycle. */
export interface DaemonServices {
  graph: BlockGraph;
  machine: Machine;
  exports: ExportManager;
  nbd: NbdServer;
  jobs: JobList;
  runState: RunState;
  schema: Schema;
  version: VersionInfo;
  emitEvent<E extends EventName>(name: E, data: EventData[E]): void;
  /** QEMU's standard output: where qemu-io prints its reports. */
  printOutput(text: string): void;
  watchers: Watchers;
  /** Closes the block layer at once (its events precede the current reply, as QEMU's do) and ends the daemon once the reply has been sent. */
  requestShutdown(reason: string): void;
}
