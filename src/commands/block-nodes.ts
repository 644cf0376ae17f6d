import type { BlockNode } from '../block/node.ts';
import type { CommandTable } from '../qmp/dispatcher.ts';
import type { BlockDeviceInfo } from '../schema/generated/qapi-types.ts';
import type { DaemonServices } from './services.ts';

export function blockNodeCommands({ graph }: DaemonServices) {
  return {
    'blockdev-add'(options) {
      graph.addBlockdev(options);
      return {};
    },
    'blockdev-del'(args) {
      graph.deleteBlockdev(args['node-name']);
      return {};
    },
    'query-named-block-nodes': () => graph.allNodes().map(blockDeviceInfo),
    'query-block': () =>
      graph.allDevices().map(([device, node]) => ({
        device,
        type: 'unknown',
        removable: true,
        locked: false,
        inserted: blockDeviceInfo(node),
      })),
  } satisfies Partial<CommandTable>;
}

/** BlockDeviceInfo in QEMU's member order; throttling and cache figures are QEMU's defaults. */
export function blockDeviceInfo(node: BlockNode): BlockDeviceInfo {
  const image = node.driver.imageInfo();
  const info: BlockDeviceInfo = {
    file: image.filename,
    'node-name': node.nodeName,
    ro: node.readOnly,
    drv: node.driver.format,
    backing_file_depth: image['backing-image'] === undefined ? 0 : 1,
    encrypted: false,
    detect_zeroes: node.detectZeroes,
    bps: 0,
    bps_rd: 0,
    bps_wr: 0,
    iops: 0,
    iops_rd: 0,
    iops_wr: 0,
    image,
    cache: { writeback: true, direct: false, 'no-flush': false },
    write_threshold: 0,
  };
  if (node.bitmaps.length > 0) info['dirty-bitmaps'] = node.bitmaps.map((bitmap) => bitmap.info());
  return info;
}
