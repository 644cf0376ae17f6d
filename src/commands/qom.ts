import type { CommandTable } from '../qmp/dispatcher.ts';
import type { DaemonServices } from './services.ts';

/** qom-get / qom-set: the guest disks' `drive` property, the one QOM property qblockd models. */
export function qomCommands({ machine }: DaemonServices) {
  return {
    'qom-get': (args) => machine.getDriveProperty(args.path, args.property),
    'qom-set'(args) {
      machine.setDriveProperty(args.path, args.property, args.value);
      return {};
    },
  } satisfies Partial<CommandTable>;
}
