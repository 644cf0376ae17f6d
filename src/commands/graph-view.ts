import type { BlockGraph } from '../block/graph.ts';
import type { BlockNode } from '../block/node.ts';
import type { DirtyBitmap } from '../block/bitmap/dirty-bitmap.ts';
import type { XQblockdBitmap, XQblockdNode } from '../schema/generated/qapi-types.ts';

/** x-qblockd-query-graph: every node with its children, device and named bitmaps, all flags included. */
export function graphView(graph: BlockGraph): XQblockdNode[] {
  const devices = new Map<BlockNode, string>(graph.allDevices().map(([name, node]) => [node, name]));
  return graph.allNodes().map((node) => {
    const view: XQblockdNode = {
      'node-name': node.nodeName,
      driver: node.driver.format,
      size: node.size(),
      'read-only': node.readOnly,
      // The backing node is a child too: the web view draws the chain as edges like the file child.
      children: [...node.children, ...(node.backing ? [node.backing] : [])].map((child) => child.nodeName),
      // Unnamed bitmaps (a job's or a filter's own) cannot be asked for by name, so they are left out.
      bitmaps: node.bitmaps.filter((bitmap) => !bitmap.anonymous).map(bitmapView),
    };
    const device = devices.get(node);
    if (device !== undefined) view.device = device;
    return view;
  });
}

function bitmapView(bitmap: DirtyBitmap): XQblockdBitmap {
  return {
    name: bitmap.name,
    granularity: bitmap.granularity,
    count: bitmap.data.dirtyBytes(),
    recording: bitmap.recording,
    enabled: bitmap.enabled,
    persistent: bitmap.persistent,
    busy: bitmap.isBusy(),
    readonly: bitmap.readonly,
    inconsistent: bitmap.inconsistent,
  };
}
