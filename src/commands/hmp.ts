import type { BlockNode } from '../block/node.ts';
import { permissionConflict, UNNAMED_BACKEND } from '../block/permission-conflict.ts';
import { NO_MEDIUM_TARGET, runHumanMonitorCommand, type QemuIoTarget } from '../hmp/index.ts';
import type { CommandTable } from '../qmp/dispatcher.ts';
import { resizeBlockdev } from '../block/resize.ts';
import { blockDeviceInfo, queryBlock, resizeContext } from './block-nodes.ts';
import { statusInfo } from './run-state.ts';
import { settleWhenDue } from '../block/throttle/completion.ts';
import type { DaemonServices } from './services.ts';

export function hmpCommands({ graph, machine, exports, runState, printOutput, version }: DaemonServices) {
  const backingConflict = backingConflictFinder({ graph, machine });
  return {
    async 'human-monitor-command'(args) {
      // Requests through a throttle node are done at once; the reply, and qemu-io's report, wait until QEMU's would be due.
      const printed: string[] = [];
      try {
        return await settleWhenDue(() => runHumanMonitor(args['command-line'], args['cpu-index'], (text) => printed.push(text)));
      } finally {
        for (const text of printed) printOutput(text);
      }
    },
  } satisfies Partial<CommandTable>;

  function runHumanMonitor(commandLine: string, cpuIndex: number | bigint | undefined, print: (text: string) => void): string {
    return runHumanMonitorCommand(
      commandLine,
      {
        print,
        version,
        blockBackends: () => queryBlock({ graph, machine }),
        namedNodes: () => graph.allNodes().map((node) => blockDeviceInfo(node)),
        status: () => statusInfo(runState),
        resizeDevice: (device, size) => resizeBlockdev(graph, { device, size }, resizeContext(exports)),
        resolveQemuIoTarget(device, guestDevicesOnly) {
          if (guestDevicesOnly) {
            const node = machine.nodeForQemuIo(device);
            return node ? qemuIoTarget(node, null) : NO_MEDIUM_TARGET;
          }
          if (graph.isEmptyDrive(device)) return NO_MEDIUM_TARGET;
          const node = graph.findForQemuIo(device);
          const viaDevice = graph.deviceNode(device) !== undefined;
          // By node name, qemu-io opens a BlockBackend of its own, whose writes a guest disk's refuses to share.
          const guestConflict = viaDevice ? undefined : machine.conflictWithWriter(node);
          // By node name, qemu-io's own BlockBackend leaves the node again after the command.
          if (!viaDevice) graph.backendDetached(node);
          const target = qemuIoTarget(node, graph.writeConflict(node), guestConflict ?? backingConflict(node));
          return viaDevice ? { ...target, tookWrite: () => graph.deviceTookWrite(device) } : target;
        },
      },
      cpuIndex,
    );
  }
}

/**
 * A backing node shares writes only as far as its overlay's users do: under a
 * guest disk (or a format node) no one else may write to it. QEMU finds this
 * conflict before it looks at read-only.
 */
function backingConflictFinder({ graph, machine }: Pick<DaemonServices, 'graph' | 'machine'>): (node: BlockNode) => string | null {
  const refusesWriters = (node: BlockNode): boolean => {
    const parent = graph.backingParentOf(node);
    return machine.conflictWithWriter(node) !== undefined || graph.writeConflict(node) !== null || (parent !== undefined && refusesWriters(parent));
  };
  return (node) => {
    const overlay = graph.backingParentOf(node);
    if (!overlay || !refusesWriters(overlay)) return null;
    return permissionConflict(node.nodeName, 'write', UNNAMED_BACKEND, { name: `node '${overlay.nodeName}'`, role: 'backing' });
  };
}

/** `conflict`: a permission conflict QEMU finds before it looks at read-only (a guest disk's, a backing child's). */
function qemuIoTarget(node: BlockNode, writeConflict: string | null, conflict: string | null = null): QemuIoTarget {
  return {
    size: node.size(),
    writeRefusal: conflict ?? (node.readOnly ? 'Block node is read-only' : writeConflict),
    read: (offset, length) => node.read(offset, length),
    write: (offset, data) => node.write(offset, data),
    writeZeroes: (offset, length, flags) => node.writeZeroes(offset, length, flags),
    writeCompressed: (offset, data) => node.writeCompressed(offset, data),
    discard: (offset, length) => node.discard(offset, length),
    flush: () => node.flush(),
  };
}
