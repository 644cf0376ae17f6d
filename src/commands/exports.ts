import type { CommandTable } from '../qmp/dispatcher.ts';
import type { DaemonServices } from './services.ts';

export function exportCommands({ exports }: DaemonServices) {
  return {
    async 'nbd-server-start'(args) {
      await exports.startServer(args.addr);
      return {};
    },
    'nbd-server-stop'() {
      exports.stopServer();
      return {};
    },
    'block-export-add'(args) {
      exports.add(args);
      return {};
    },
    'block-export-del'(args) {
      exports.delete(args.id);
      return {};
    },
    'query-block-exports': () => exports.list(),
  } satisfies Partial<CommandTable>;
}
