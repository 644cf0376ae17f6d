import type { CommandTable } from '../qmp/dispatcher.ts';
import type { DaemonServices } from './services.ts';

export function exportCommands({ exports, nbd, graph }: DaemonServices) {
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
    // The deprecated pair QEMU 7.2 still has: an export whose id is its name, a read-only node quietly exported read-only.
    'nbd-server-add'(args) {
      const node = graph.findDeviceOrNode(args.device);
      const name = args.name ?? args.device;
      exports.add({
        type: 'nbd',
        id: name,
        'node-name': node.nodeName,
        name,
        ...(args.description !== undefined && { description: args.description }),
        writable: (args.writable ?? false) && !node.readOnly,
        ...(args.bitmap !== undefined && { bitmaps: [args.bitmap] }),
      });
      return {};
    },
    'nbd-server-remove'(args) {
      exports.delete(args.name, args.mode);
      return {};
    },
    'block-export-del'(args) {
      exports.delete(args.id, args.mode);
      return {};
    },
    'query-block-exports': () => exports.list(),
  } satisfies Partial<CommandTable>;
}
