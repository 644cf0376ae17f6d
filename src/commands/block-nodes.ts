import type { BlockNode } from '../block/node.ts';
import { QmpError } from '../qmp/errors.ts';
import type { CommandTable } from '../qmp/dispatcher.ts';
import type { GuestDisk } from '../machine/machine.ts';
import type { BlockDeviceInfo, BlockInfo, ImageInfo } from '../schema/generated/qapi-types.ts';
import type { DaemonServices } from './services.ts';
import { permissionConflict, UNNAMED_BACKEND } from '../block/permission-conflict.ts';
import { reopenNodes } from '../block/reopen.ts';
import { resizeBlockdev, type ResizeContext } from '../block/resize.ts';
import type { ExportManager } from '../block/exports.ts';

export function blockNodeCommands({ graph, machine, exports, jobs }: DaemonServices) {
  return {
    'blockdev-reopen'(args) {
      reopenNodes(graph, args.options, {
        writtenFromOutside: (node) =>
          isJobTarget(node) || exports.onNode(node).some((exported) => exported.writable) || (machine.hasDiskOn(node) && !node.readOnly),
        drain(nodes) {
          for (const node of nodes) jobs.drainBegin(node);
          for (const node of nodes) jobs.drainEnd(node);
        },
      });
      return {};
    },
    block_resize(args) {
      resizeBlockdev(graph, { device: args.device, nodeName: args['node-name'], size: args.size }, resizeContext(exports));
      return {};
    },
    'blockdev-add'(options) {
      graph.addBlockdev(options);
      return {};
    },
    'blockdev-del'(args) {
      graph.deleteBlockdev(args['node-name']);
      return {};
    },
    'query-named-block-nodes': (args) =>
      graph.allNodes().map((node) => {
        if (node.driver.noMedium?.()) throw new QmpError(`Block device ${graph.deviceNameOf(node) ?? node.nodeName} is ejected`);
        return blockDeviceInfo(node, args.flat === true);
      }),
    'query-block': () => queryBlock({ graph, machine }),
  } satisfies Partial<CommandTable>;
}

/** A backup job writes its target, and QEMU's op blockers keep it from being resized. */
function isJobTarget(node: BlockNode): boolean {
  return [...node.users].some((user) => user.startsWith('job '));
}

/** block_resize's view of users outside the graph: jobs block their targets; an export's BlockBackend shares every permission but resizing. */
export function resizeContext(exports: ExportManager): ResizeContext {
  return {
    blocked: isJobTarget,
    conflict: (node) => (exports.onNode(node).length > 0 ? permissionConflict(node.nodeName, 'resize', UNNAMED_BACKEND, UNNAMED_BACKEND) : null),
  };
}

/**
 * query-block: -drive BlockBackends come first (with or without a medium, the machine's default
 * drives after the command line's), then the unnamed ones guest disks made over -blockdev nodes:
 * QEMU's creation order, since every -drive is opened before any -device.
 */
export function queryBlock({ graph, machine }: Pick<DaemonServices, 'graph' | 'machine'>): BlockInfo[] {
  return [
    ...graph.namedBackends().map(([device, node]) => {
      const disk = machine.diskOfDrive(device);
      const info = blockInfo(device, node, disk);
      if (info.inserted) info.inserted.cache.writeback = (disk && machine.writeCacheOf(disk)) ?? !graph.isWritethrough(device);
      return info;
    }),
    ...machine.unnamedDisks().map(({ disk, node }) => {
      const info = blockInfo('', node, disk);
      if (info.inserted) info.inserted.cache.writeback = machine.writeCacheOf(disk) ?? true;
      return info;
    }),
  ];
}

/**
 * A BlockBackend. One no guest disk uses, or a disk with removable media, is removable; a disk
 * names itself (qdev) and reports its I/O status, except a floppy drive; a CD-ROM drive its tray.
 */
function blockInfo(device: string, node: BlockNode | undefined, disk: GuestDisk | undefined): BlockInfo {
  const removable = disk?.model.disk?.removable;
  const info: BlockInfo = { device, type: 'unknown', removable: disk === undefined || removable !== undefined, locked: false };
  // A node without a driver (qcow2 after a fatal corruption) is not reported as inserted.
  if (node && !node.driver.noMedium?.()) info.inserted = blockDeviceInfo(node);
  if (disk) {
    info.qdev = disk.qdev;
    if (removable?.tray !== false) info['io-status'] = 'ok';
    if (removable?.tray) info.tray_open = false;
  }
  return info;
}

/**
 * BlockDeviceInfo in QEMU's member order; throttling figures are QEMU's defaults.
 * `flat` leaves out the images below the node, and with them the depth.
 */
export function blockDeviceInfo(node: BlockNode, flat = false): BlockDeviceInfo {
  const image = chainImageInfo(node, flat);
  const info: BlockDeviceInfo = {
    file: image.filename,
    'node-name': node.nodeName,
    ro: node.readOnly,
    drv: node.driver.format,
    ...(node.backing && { backing_file: node.backing.driver.imageInfo().filename }),
    backing_file_depth: chainDepth(image),
    encrypted: false,
    detect_zeroes: node.settings.detectZeroes,
    bps: 0,
    bps_rd: 0,
    bps_wr: 0,
    iops: 0,
    iops_rd: 0,
    iops_wr: 0,
    image,
    cache: { writeback: true, direct: node.settings.direct, 'no-flush': node.settings.noFlush },
    write_threshold: 0,
  };
  if (node.bitmaps.length > 0) info['dirty-bitmaps'] = node.bitmaps.map((bitmap) => bitmap.info());
  return info;
}

/** The node's ImageInfo with the images below it nested as `backing-image` (a filter's child, a backing chain). */
function chainImageInfo(node: BlockNode, flat: boolean): ImageInfo {
  const image = node.driver.imageInfo();
  const below = flat ? undefined : (node.backing ?? (node.driver.isFilter ? node.children[0] : undefined));
  if (below) image['backing-image'] = chainImageInfo(below, false);
  return image;
}

function chainDepth(image: ImageInfo): number {
  return image['backing-image'] === undefined ? 0 : 1 + chainDepth(image['backing-image']);
}
