import type { PreparedAction } from '../block/bitmap/actions.ts';
import type { BlockGraph } from '../block/graph.ts';
import { BackupJob, type BackupRequest } from '../block/jobs/backup.ts';
import type { JobGroup } from '../block/jobs/job.ts';
import type { JobList } from '../block/jobs/job-list.ts';
import type { BlockNode } from '../block/node.ts';
import type { TransactionActionTable, TransactionContext } from '../block/transaction.ts';
import { transact } from './transaction.ts';
import { createImage, type ImageCreationHost } from '../block/image-create.ts';
import type { Schema } from '../schema/index.ts';
import type { CommandTable } from '../qmp/dispatcher.ts';
import type { BackupCommon, BlockdevBackup, DriveBackup } from '../schema/generated/qapi-types.ts';
import type { DaemonServices } from './services.ts';

function backupRequest(common: BackupCommon, source: BlockNode, target: BlockNode, graph: BlockGraph): BackupRequest {
  return {
    // Without job-id QEMU names the job after the device, which a bare node does not have.
    jobId: common['job-id'] ?? graph.deviceNameOf(source) ?? '',
    source,
    target,
    sync: common.sync,
    speed: common.speed === undefined ? undefined : Number(common.speed),
    bitmap: common.bitmap,
    bitmapMode: common['bitmap-mode'],
    compress: common.compress,
    onSourceError: common['on-source-error'],
    onTargetError: common['on-target-error'],
    autoFinalize: common['auto-finalize'],
    autoDismiss: common['auto-dismiss'],
    filterNodeName: common['filter-node-name'],
    maxWorkers: common['x-perf']?.['max-workers'] === undefined ? undefined : Number(common['x-perf']['max-workers']),
    maxChunk: common['x-perf']?.['max-chunk'] === undefined ? undefined : Number(common['x-perf']['max-chunk']),
  };
}

/**
 * A backup as a transaction unit: prepare drains the source and creates the
 * job (state created), commit starts it, clean ends the drain (the
 * paused/running pair), abort cancels the job that never ran.
 */
function prepareBackup(graph: BlockGraph, jobs: JobList, request: () => BackupRequest, group: JobGroup | undefined): PreparedAction {
  const backup = request();
  jobs.drainBegin(backup.source);
  let job;
  try {
    job = BackupJob.create(graph, jobs, backup, { group });
  } catch (error) {
    jobs.drainEnd(backup.source);
    throw error;
  }
  // Attached inside the open drained sections, the job starts paused once per section.
  for (let i = 0; i < jobs.quiescedCount(backup.source); i++) job.pause();
  return {
    commit: () => job.start(),
    abort: () => job.cancel(true),
    clean: () => jobs.drainEnd(backup.source),
  };
}

/**
 * drive-backup's target: with mode absolute-paths (the default) a new image in
 * `format` (default: the source's) the size of the source, then opened. As in
 * QEMU, sync=top names the source's backing file as the new image's backing
 * (and copies in full when the source has none), and sync=none makes the
 * source node itself the target's backing, whatever the mode.
 */
function openDriveBackupTarget(graph: BlockGraph, source: BlockNode, args: DriveBackup, host: ImageCreationHost): { target: BlockNode; sync: DriveBackup['sync'] } {
  const mode = args.mode ?? 'absolute-paths';
  const format = args.format ?? (mode === 'existing' ? undefined : source.driver.format);
  const sync = args.sync === 'top' && !source.backing ? 'full' : args.sync;
  const below = sync === 'top' ? source.backing : sync === 'none' ? source : undefined;
  if (mode === 'absolute-paths') {
    const backing = below && { file: graph.filenameOf(below), format: below.driver.format };
    createImage({ path: args.target, format: format!, size: source.size(), backing }, host);
  }
  const target = graph.openImplicit(args.target, format, { withoutBacking: sync === 'none' });
  try {
    if (sync === 'none') graph.attachBacking(target, source);
  } catch (error) {
    graph.closeImplicit(target);
    throw error;
  }
  return { target, sync };
}

/** drive-backup and blockdev-snapshot-sync create images with the schema's drivers, and print as QEMU does. */
export function imageCreationHost({ schema, printOutput }: DaemonServices): ImageCreationHost {
  return { isKnownFormat: (name) => isBlockdevDriver(schema, name), print: printOutput };
}

export function isBlockdevDriver(schema: Schema, name: string): boolean {
  try {
    schema.validateType('BlockdevDriver', name, 'qmp');
    return true;
  } catch {
    return false;
  }
}

export function backupActions(services: DaemonServices): TransactionActionTable {
  const { graph, jobs } = services;
  return {
    'blockdev-backup': {
      individualOnly: false,
      prepare: (args: BlockdevBackup, context: TransactionContext) =>
        prepareBackup(graph, jobs, () => backupRequest(args, graph.findDeviceOrNode(args.device), graph.findDeviceOrNode(args.target), graph), context.jobGroup),
    },
    'drive-backup': {
      individualOnly: false,
      prepare: (args: DriveBackup, context: TransactionContext) => {
        const source = graph.findDeviceOrNode(args.device);
        const { target, sync } = openDriveBackupTarget(graph, source, args, imageCreationHost(services));
        try {
          return prepareBackup(graph, jobs, () => ({ ...backupRequest({ ...args, sync }, source, target, graph), onClean: () => graph.closeImplicit(target) }), context.jobGroup);
        } catch (error) {
          graph.closeImplicit(target);
          throw error;
        }
      },
    },
  };
}

export function backupCommands(services: DaemonServices) {
  const actions = backupActions(services);
  return {
    'blockdev-backup': (data) => (transact(services, [{ type: 'blockdev-backup', data }], 'individual', actions), {}),
    'drive-backup': (data) => (transact(services, [{ type: 'drive-backup', data }], 'individual', actions), {}),
  } satisfies Partial<CommandTable>;
}
