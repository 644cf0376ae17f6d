import { QmpError } from '../../qmp/errors.ts';
import { BitmapData } from '../bitmap/bitmap-data.ts';
import { DirtyBitmap } from '../bitmap/dirty-bitmap.ts';
import { checkBitmapPermission } from '../bitmap/permissions.ts';
import { FrozenBitmap, type BitmapSyncMode } from '../bitmap/successor.ts';
import { CopyBeforeWriteDriver } from '../drivers/copy-before-write.ts';
import type { BlockGraph } from '../graph.ts';
import type { BlockNode } from '../node.ts';
import type { Job, JobDriver } from './job.ts';
import type { JobList, JobOptions } from './job-list.ts';
import { RateLimit } from './rate-limit.ts';

export type BackupSync = 'full' | 'top' | 'none' | 'incremental' | 'bitmap';
export type OnError = 'report' | 'ignore' | 'enospc' | 'stop' | 'auto';

/** What blockdev-backup and drive-backup have in common (QAPI's BackupCommon), resolved to nodes. */
export interface BackupRequest {
  jobId: string;
  source: BlockNode;
  target: BlockNode;
  sync: BackupSync;
  speed?: number;
  bitmap?: string;
  bitmapMode?: BitmapSyncMode;
  compress?: boolean;
  onSourceError?: OnError;
  onTargetError?: OnError;
  autoFinalize?: boolean;
  autoDismiss?: boolean;
  filterNodeName?: string;
  maxWorkers?: number;
  maxChunk?: number;
  /** Runs when the job lets go of its nodes (drive-backup closes the target it opened). */
  onClean?: () => void;
}

const CLUSTER_SIZE = 65536;
/** block-copy moves at most this much per request. */
const MAX_CHUNK = 1 << 20;
const EIO = 5;
const ENOSPC = 28;

/** Which error action each on-*-error policy takes for an errno. */
const ERROR_ACTIONS: Record<OnError, (errno: number) => 'report' | 'ignore' | 'stop'> = {
  report: () => 'report',
  ignore: () => 'ignore',
  stop: () => 'stop',
  enospc: (errno) => (errno === ENOSPC ? 'stop' : 'report'),
  auto: () => 'report',
};

/** Formats that can take compressed writes. */
const COMPRESSING_FORMATS = new Set(['qcow2']);

/**
 * do_backup_common's checks, in QEMU's order: they run before anything is
 * created, so a refusal leaves no trace. Returns the bitmap and its mode.
 */
function checkBackupArguments(request: BackupRequest): { bitmap?: DirtyBitmap; mode?: BitmapSyncMode; sync: BackupSync } {
  let { sync, bitmapMode } = request;
  if ((sync === 'bitmap' || sync === 'incremental') && request.bitmap === undefined) {
    throw new QmpError(`must provide a valid bitmap name for '${sync}' sync mode`);
  }
  if (sync === 'incremental') {
    if (bitmapMode !== undefined && bitmapMode !== 'on-success') {
      throw new QmpError("Bitmap sync mode must be 'on-success' when using sync mode 'incremental'");
    }
    sync = 'bitmap';
    bitmapMode = 'on-success';
  }
  if (request.bitmap === undefined) {
    if (bitmapMode !== undefined) throw new QmpError('Cannot specify bitmap sync mode without a bitmap');
    return { sync };
  }
  const bitmap = request.source.findBitmap(request.bitmap);
  if (!bitmap) throw new QmpError(`Bitmap '${request.bitmap}' could not be found`);
  if (bitmapMode === undefined) throw new QmpError('Bitmap sync mode must be given when providing a bitmap');
  checkBitmapPermission(bitmap, 'backupInput');
  if (sync === 'none') throw new QmpError("sync mode 'none' does not produce meaningful bitmap outputs");
  if (bitmapMode === 'never' && sync !== 'bitmap') {
    throw new QmpError(`Bitmap sync mode 'never' has no meaningful effect when combined with sync mode '${sync}'`);
  }
  return { bitmap, mode: bitmapMode, sync };
}

/** backup_job_create's checks on the nodes, before anything changes. */
function checkNodes(request: BackupRequest, jobs: JobList, bitmap: DirtyBitmap | undefined, mode: BitmapSyncMode | undefined): void {
  const { source, target } = request;
  if (source === target) throw new QmpError('Source and target cannot be the same');
  if (request.compress && !COMPRESSING_FORMATS.has(target.driver.format)) {
    throw new QmpError('Compression is not supported for this drive ');
  }
  for (const node of [source, target]) {
    const holder = jobs.blockerOf(node);
    if (holder) throw new QmpError(`Node '${node.nodeName}' is busy: block device is in use by block job: ${holder.type}`);
  }
  if (request.maxWorkers !== undefined && request.maxWorkers < 1) throw new QmpError('max-workers must be greater than zero');
  if (request.maxChunk !== undefined && request.maxChunk < 0) {
    throw new QmpError('max-chunk must be zero (which means no limit) or greater than zero');
  }
  if (bitmap && mode !== 'never') checkBitmapPermission(bitmap, 'backup');
  if (source.size() !== target.size()) throw new QmpError('Source and target image have different sizes');
}

/**
 * A running backup: the copy set (an unnamed, disabled bitmap on the source,
 * as QEMU's block-copy keeps it), the copy-before-write filter above the
 * source, the frozen sync bitmap, and the copy loop.
 */
export class BackupJob implements JobDriver {
  readonly type = 'backup';
  private readonly copySet: DirtyBitmap;
  private readonly filter: BlockNode;
  readonly frozen: FrozenBitmap | undefined;
  private readonly rateLimit = new RateLimit();
  private job!: Job;

  private constructor(
    private readonly graph: BlockGraph,
    private readonly request: BackupRequest,
    private readonly sync: BackupSync,
    bitmap: DirtyBitmap | undefined,
    private readonly mode: BitmapSyncMode | undefined,
  ) {
    const { source } = request;
    this.frozen = bitmap && new FrozenBitmap(source, bitmap);
    const granularity = Math.max(CLUSTER_SIZE, request.target.driver.clusterSize ?? 0);
    this.copySet = new DirtyBitmap('', new BitmapData({ diskSize: source.size(), granularity }), { enabled: false, persistent: false });
    // With sync=none nothing is copied in the background, but every first guest write is.
    if (sync === 'bitmap') this.copySet.data.mergeFrom(bitmap!.data);
    else this.copySet.data.markRange(0, source.size());
    source.addBitmap(this.copySet);
    const driver = new CopyBeforeWriteDriver(source.asChild(), (offset, length) => this.copyBeforeWrite(offset, length));
    this.filter = graph.insertFilter(source, driver, request.filterNodeName);
    this.filter.addBitmap(new DirtyBitmap('', new BitmapData({ diskSize: source.size(), granularity: CLUSTER_SIZE }), { enabled: false, persistent: false }));
    const access = new DirtyBitmap('', new BitmapData({ diskSize: source.size(), granularity: CLUSTER_SIZE }), { enabled: false, persistent: false });
    access.data.markRange(0, source.size());
    this.filter.addBitmap(access);
  }

  /**
   * Checks, builds the job in state `created` and attaches it to its nodes.
   * The caller starts it (transaction commit) or cancels it (abort).
   */
  static create(graph: BlockGraph, jobs: JobList, request: BackupRequest, options: Pick<JobOptions, 'group'>): Job {
    const { bitmap, mode, sync } = checkBackupArguments(request);
    checkNodes(request, jobs, bitmap, mode);
    const backup = new BackupJob(graph, request, sync, bitmap, mode);
    let job: Job;
    try {
      job = jobs.create(request.jobId, backup, {
        autoFinalize: request.autoFinalize ?? true,
        autoDismiss: request.autoDismiss ?? true,
        group: options.group,
      });
    } catch (error) {
      backup.undo(true);
      throw error;
    }
    backup.job = job;
    jobs.attachNodes(job, { drained: [request.source, request.target, backup.filter], blocked: [request.target, backup.filter] });
    request.target.users.add(`job ${job.id}`);
    job.progressTotal = sync === 'none' ? 0 : backup.copySet.data.dirtyBytes();
    try {
      job.setSpeed(request.speed ?? 0);
    } catch (error) {
      job.earlyFail();
      backup.clean();
      backup.frozen?.resolve(mode!, 'failure', backup.copySet.data);
      throw error;
    }
    return job;
  }

  setSpeed(_job: Job, speed: number): void {
    this.rateLimit.setSpeed(speed);
  }

  cancel(): boolean {
    return true;
  }

  async run(job: Job): Promise<number> {
    if (this.sync === 'none') {
      while (!job.isCancelled()) await job.sleep(null);
      return 0;
    }
    const data = this.copySet.data;
    while (!job.isCancelled()) {
      const chunk = this.nextChunk();
      if (!chunk) break;
      const wait = this.rateLimit.delay(0);
      if (wait > 0) {
        await job.sleep(wait);
        continue;
      }
      this.rateLimit.delay(chunk.length);
      const failed = this.copy(chunk.offset, chunk.length);
      if (failed) {
        const action = this.reportError(failed.operation, failed.errno);
        if (action === 'report') return -failed.errno;
      } else {
        data.resetRange(chunk.offset, chunk.length);
        job.progressCurrent += chunk.length;
      }
      await job.sleep(0);
    }
    return 0;
  }

  /** The first run of set clusters, at most MAX_CHUNK long. */
  private nextChunk(): { offset: number; length: number } | undefined {
    const data = this.copySet.data;
    for (const [first, end] of data.dirtyRuns()) {
      const offset = first * data.granularity;
      const length = Math.min(end * data.granularity, data.diskSize) - offset;
      return { offset, length: Math.min(length, MAX_CHUNK) };
    }
    return undefined;
  }

  /** Copies one region; returns what failed, if anything. */
  private copy(offset: number, length: number): { operation: 'read' | 'write'; errno: number } | null {
    let buffer: Buffer;
    try {
      buffer = this.request.source.read(offset, length);
    } catch (error) {
      return { operation: 'read', errno: errnoOf(error) };
    }
    try {
      if (isZero(buffer)) this.request.target.writeZeroes(offset, length);
      else this.request.target.write(offset, buffer);
    } catch (error) {
      return { operation: 'write', errno: errnoOf(error) };
    }
    return null;
  }

  private reportError(operation: 'read' | 'write', errno: number): 'report' | 'ignore' | 'stop' {
    const policy = (operation === 'read' ? this.request.onSourceError : this.request.onTargetError) ?? 'report';
    const action = ERROR_ACTIONS[policy](errno);
    this.job.emitEvent('BLOCK_JOB_ERROR', { device: this.job.id, operation, action });
    if (action === 'stop') this.job.pauseForError(errno === ENOSPC ? 'nospace' : 'failed');
    return action;
  }

  /** A guest write through the filter: copy the old data of the clusters still to be copied, first. */
  private copyBeforeWrite(offset: number, length: number): void {
    const data = this.copySet.data;
    const granularity = data.granularity;
    const first = Math.floor(offset / granularity);
    const end = Math.ceil(Math.min(offset + length, data.diskSize) / granularity);
    for (let cluster = first; cluster < end; cluster++) {
      if (!data.getChunk(cluster)) continue;
      const at = cluster * granularity;
      const size = Math.min(granularity, data.diskSize - at);
      if (this.copy(at, size)) throw new QmpError('Input/output error');
      data.resetRange(at, size);
      this.job.progressCurrent += size;
    }
  }

  prepare(): number {
    return 0;
  }

  commit(): void {
    this.frozen?.resolve(this.mode!, 'success', this.copySet.data);
  }

  abort(): void {
    this.frozen?.resolve(this.mode!, 'failure', this.copySet.data);
  }

  clean(): void {
    this.undo(false);
    this.request.target.users.delete(`job ${this.job.id}`);
    this.request.onClean?.();
  }

  /** Takes the filter and the copy set away again; before the job exists, unfreezes the bitmap too. */
  private undo(unfreeze: boolean): void {
    this.graph.removeFilter(this.filter);
    this.request.source.dropBitmap(this.copySet);
    if (unfreeze) this.frozen?.resolve(this.mode!, 'failure', this.copySet.data);
  }
}

const ZEROES = Buffer.alloc(MAX_CHUNK);

function isZero(buffer: Buffer): boolean {
  for (let at = 0; at < buffer.length; at += ZEROES.length) {
    const piece = buffer.subarray(at, at + ZEROES.length);
    if (!piece.equals(ZEROES.subarray(0, piece.length))) return false;
  }
  return true;
}

function errnoOf(error: unknown): number {
  const errno = (error as { errno?: number }).errno;
  return typeof errno === 'number' && errno !== 0 ? Math.abs(errno) : EIO;
}
