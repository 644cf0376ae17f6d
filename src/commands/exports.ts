import type { CommandTable } from '../qmp/dispatcher.ts';
import type { DaemonServices } from './services.ts';

export function exportCommands({ exports, nbd }: DaemonServices) {
  return {
    async 'nbd-server-start'(args) {
      await nbd.start(args);
      return {};
    },
    'nbd-server-stop'() {
      nbd.stop();
      return {};
    },
    'block-export-add'(args) {
      exports.add(args);
      return {};
    },
    'block-export-del'(args) {
      exports.delete(args.id, args.mode);
      return {};
    },
    'query-block-exports': () => exports.list(),
  } satisfies Partial<CommandTable>;
}
