import type { BlockNode } from '../block/node.ts';
import { QemuIoOpenError, runHumanMonitorCommand, type QemuIoTarget } from '../hmp/index.ts';
import type { CommandTable } from '../qmp/dispatcher.ts';
import { blockDeviceInfo, queryBlock } from './block-nodes.ts';
import { statusInfo } from './run-state.ts';
import type { DaemonServices } from './services.ts';

export function hmpCommands({ graph, jobs, machine, runState, printOutput, version }: DaemonServices) {
  return {
    'human-monitor-command'(args) {
      return runHumanMonitorCommand(
        args['command-line'],
        {
          print: printOutput,
          version,
          blockBackends: () => queryBlock({ graph, machine }),
          namedNodes: () => graph.allNodes().map((node) => blockDeviceInfo(node)),
          status: () => statusInfo(runState),
          resolveQemuIoTarget(device, guestDevicesOnly) {
            if (guestDevicesOnly) return qemuIoTarget(machine.nodeForQemuIo(device), null);
            const node = graph.findForQemuIo(device);
            if (!graph.deviceNode(device)) {
              // By node name, qemu-io opens a BlockBackend of its own, which a guest disk's refuses to share.
              const conflict = machine.conflictWithWriter(node);
              if (conflict) throw new QemuIoOpenError(conflict);
              // Attaching that BlockBackend and detaching it again are two drained sections,
              // each a paused/running pair of every job on the node.
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
