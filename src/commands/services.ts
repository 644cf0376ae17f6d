import type { BlockGraph } from '../block/graph.ts';
import type { ExportManager } from '../block/exports.ts';
import type { NbdServer } from '../nbd/server.ts';
import type { Schema } from '../schema/index.ts';

export interface VersionInfo {
  qemu: { major: number; minor: number; micro: number };
  package: string;
}

/** What command handlers drive: the block layer, exports, events and the daemon's lifecycle. */
export interface DaemonServices {
  graph: BlockGraph;
  exports: ExportManager;
  nbd: NbdServer;
  schema: Schema;
  version: VersionInfo;
  emitEvent(name: string, data?: Record<string, unknown>): void;
  /** Runs after the current reply has been sent. */
  requestShutdown(reason: string): void;
}
