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
          resolveQemuIoTarget: (device, guestDevicesOnly) => {
            const node = graph.findForQemuIo(device, guestDevicesOnly);
            return qemuIoTarget(node, graph.imageFileParent(node)?.nodeName);
          },
        },
        args['cpu-index'],
      );
    },
  } satisfies Partial<CommandTable>;
}

function qemuIoTarget(node: BlockNode, writeUnsharedBy: string | undefined): QemuIoTarget {
  return {
    size: node.size(),
    readOnly: node.readOnly,
    nodeName: node.nodeName,
    ...(writeUnsharedBy === undefined ? {} : { writeUnsharedBy }),
    read: (offset, length) => node.read(offset, length),
    write: (offset, data) => node.write(offset, data),
    writeZeroes: (offset, length) => node.writeZeroes(offset, length),
    discard: (offset, length) => node.discard(offset, length),
    flush: () => node.flush(),
  };
}
