import type { ExportRemoveMode, NbdExportArgs } from '../block/exports.ts';
import type { NbdServerOptions } from '../nbd/server.ts';
import type { CommandTable } from '../qmp/dispatcher.ts';
import type { DaemonServices } from './services.ts';

export function exportCommands({ exports, nbd }: DaemonServices): CommandTable {
  return {
    async 'nbd-server-start'(args: NbdServerOptions) {
      await nbd.start(args);
      return {};
    },
    'nbd-server-stop'() {
      nbd.stop();
      return {};
    },
    'block-export-add'(args: NbdExportArgs) {
      exports.add(args);
      return {};
    },
    'block-export-del'(args: { id: string; mode?: ExportRemoveMode }) {
      exports.delete(args.id, args.mode);
      return {};
    },
    'query-block-exports': () => exports.list(),
  };
}
