import type { BlockNode } from '../block/node.ts';
import { runHumanMonitorCommand, type QemuIoTarget } from '../hmp/index.ts';
import type { CommandTable } from '../qmp/dispatcher.ts';
import type { DaemonServices } from './services.ts';

export function hmpCommands({ graph }: DaemonServices) {
  return {
    'human-monitor-command'(args) {
      return runHumanMonitorCommand(
        args['command-line'],
        {
          resolveQemuIoTarget: (device, guestDevicesOnly) => qemuIoTarget(graph.findForQemuIo(device, guestDevicesOnly)),
        },
        args['cpu-index'],
      );
    },
  } satisfies Partial<CommandTable>;
}

function qemuIoTarget(node: BlockNode): QemuIoTarget {
  return {
    size: node.size(),
    readOnly: node.readOnly,
    read: (offset, length) => node.read(offset, length),
    write: (offset, data) => node.write(offset, data),
    writeZeroes: (offset, length) => node.writeZeroes(offset, length),
    discard: (offset, length) => node.discard(offset, length),
    flush: () => node.flush(),
  };
}
