import { lookupBitmap } from '../block/bitmap/actions.ts';
import { dirtyDensity } from '../block/bitmap/density.ts';
import type { CommandTable } from '../qmp/dispatcher.ts';
import { graphView } from './graph-view.ts';
import type { DaemonServices } from './services.ts';

/** qblockd's own x- commands (feature `unstable`), used by the web view; QEMU has none of them. */
export function qblockdCommands({ graph, exports, watchers }: DaemonServices) {
  return {
    'x-qblockd-watch'(_args, session) {
      watchers.watch(session);
      return {};
    },
    'x-qblockd-query-graph': () => graphView(graph),
    'x-qblockd-query-clients': () => watchers.clients(),
    'x-qblockd-query-exports': () => exports.details(),
    'x-qblockd-dirty-map'(args) {
      const { bitmap } = lookupBitmap(graph, args.node, args.name);
      // Beyond 2^53 bytes a range lies past any disk's end, so rounding it cannot change the picture.
      const offset = Number(args.offset ?? 0);
      const length = args.length === undefined ? Math.max(0, bitmap.data.diskSize - offset) : Number(args.length);
      const map = dirtyDensity(bitmap.data, offset, length, args.width);
      return {
        offset: map.offset,
        length: map.length,
        granularity: bitmap.granularity,
        count: bitmap.data.dirtyBytes(),
        density: Buffer.from(map.density.buffer, map.density.byteOffset, map.density.length).toString('base64'),
      };
    },
  } satisfies Partial<CommandTable>;
}
