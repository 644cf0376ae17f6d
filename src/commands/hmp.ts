import type { BlockNode } from '../block/node.ts';
import { NO_MEDIUM_TARGET, QemuIoOpenError, runHumanMonitorCommand, type QemuIoTarget } from '../hmp/index.ts';
import type { CommandTable } from '../qmp/dispatcher.ts';
import { resizeBlockdev } from '../block/resize.ts';
import { blockDeviceInfo, queryBlock, resizeContext } from './block-nodes.ts';
import { statusInfo } from './run-state.ts';
import type { DaemonServices } from './services.ts';

export function hmpCommands({ graph, jobs, machine, exports, runState, printOutput, version }: DaemonServices) {
  return {
    'human-monitor-command'(args) {
      return runHumanMonitorCommand(
        args['command-line'],
        {
          print: printOutput,
          version,
          blockBackends: () => queryBlock({ graph, machine }),
          namedNodes: () => graph.allNodes().map(blockDeviceInfo),
          status: () => statusInfo(runState),
          resizeDevice: (device, size) => resizeBlockdev(graph, { device, size }, resizeContext(exports)),
          resolveQemuIoTarget(device, guestDevicesOnly) {
            if (guestDevicesOnly) {
              const node = machine.nodeForQemuIo(device);
              return node ? qemuIoTarget(node, null) : NO_MEDIUM_TARGET;
            }
            if (graph.isEmptyDrive(device)) return NO_MEDIUM_TARGET;
            const node = graph.findForQemuIo(device);
            if (!graph.deviceNode(device)) {
              // By node name, qemu-io opens a BlockBackend of its own: attaching it and detaching it
              // again (also when a guest disk's BlockBackend refuses to share the node) are two
              // drained sections, each a paused/running pair of every job on the node.
              jobs.drain(node);
              jobs.drain(node);
              const conflict = machine.conflictWithWriter(node);
              if (conflict) throw new QemuIoOpenError(conflict);
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
