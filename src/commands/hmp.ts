import type { BlockNode } from '../block/node.ts';
import { runHumanMonitorCommand, type QemuIoTarget } from '../hmp/index.ts';
import type { CommandTable } from '../qmp/dispatcher.ts';
import type { DaemonServices } from './services.ts';

export function hmpCommands({ graph, jobs }: DaemonServices) {
  return {
    'human-monitor-command'(args) {
      return runHumanMonitorCommand(
        args['command-line'],
        {
          resolveQemuIoTarget: (device, guestDevicesOnly) => {
            const node = graph.findForQemuIo(device, guestDevicesOnly);
            // On a node name qemu-io attaches a new BlockBackend and detaches it again:
            // two drained sections, each a paused/running pair of every job on the node.
            if (!graph.allDevices().some(([name]) => name === device)) {
              jobs.drain(node);
              jobs.drain(node);
            }
            return qemuIoTarget(node, graph.writeConflict(node));
          },
        },
        args['cpu-index'],
      );
    },
  } satisfies Partial<CommandTable>;
}

function qemuIoTarget(node: BlockNode, writeConflict: string | null): QemuIoTarget {
  return {
    size: node.size(),
    writeRefusal: node.readOnly ? 'Block node is read-only' : writeConflict,
    read: (offset, length) => node.read(offset, length),
    write: (offset, data) => node.write(offset, data),
    writeZeroes: (offset, length) => node.writeZeroes(offset, length),
    discard: (offset, length) => node.discard(offset, length),
    flush: () => node.flush(),
  };
}
