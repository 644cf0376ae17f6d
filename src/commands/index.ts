import type { CommandTable } from '../qmp/dispatcher.ts';
import { backupCommands } from './backup.ts';
import { bitmapCommands } from './bitmaps.ts';
import { blockNodeCommands } from './block-nodes.ts';
import { controlCommands } from './control.ts';
import { createCommands } from './create.ts';
import { exportCommands } from './exports.ts';
import { hmpCommands } from './hmp.ts';
import { jobCommands } from './jobs.ts';
import { runStateCommands } from './run-state.ts';
import { snapshotCommands } from './snapshot.ts';
import { qomCommands } from './qom.ts';
import { objectCommands } from './objects.ts';
import { qblockdCommands } from './qblockd.ts';
import type { DaemonServices } from './services.ts';

export type { DaemonServices } from './services.ts';

/** Every QMP command of the schema and its handler; the type checker refuses a missing or mistyped one. */
export function allCommands(services: DaemonServices): CommandTable {
  return {
    ...controlCommands(services),
    ...blockNodeCommands(services),
    ...bitmapCommands(services),
    ...exportCommands(services),
    ...hmpCommands(services),
    ...jobCommands(services),
    ...backupCommands(services),
    ...snapshotCommands(services),
    ...createCommands(services),
    ...runStateCommands(services),
    ...qomCommands(services),
    ...objectCommands(services),
    ...qblockdCommands(services),
  };
}
