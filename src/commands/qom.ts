import type { CommandTable } from '../qmp/dispatcher.ts';
import type { DaemonServices } from './services.ts';

/** qom-get / qom-set: the guest disks' properties (`drive`, serial, bootindex, ...), the QOM properties qblockd models. */
export function qomCommands({ machine }: DaemonServices) {
  return {
    'qom-get': (args) => machine.getProperty(args.path, args.property),
    'qom-set'(args) {
      machine.setProperty(args.path, args.property, args.value);
      return {};
    },
  } satisfies Partial<CommandTable>;
}
