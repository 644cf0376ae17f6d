import type { NbdExportArgs, SocketAddress } from '../block/exports.ts';
import type { CommandTable } from '../qmp/dispatcher.ts';
import type { DaemonServices } from './services.ts';

export function exportCommands({ exports }: DaemonServices): CommandTable {
  return {
    async 'nbd-server-start'(args: { addr: SocketAddress }) {
      await exports.startServer(args.addr);
      return {};
    },
    'nbd-server-stop'() {
      exports.stopServer();
      return {};
    },
    'block-export-add'(args: NbdExportArgs) {
      exports.add(args);
      return {};
    },
    'block-export-del'(args: { id: string }) {
      exports.delete(args.id);
      return {};
    },
    'query-block-exports': () => exports.list(),
  };
}
