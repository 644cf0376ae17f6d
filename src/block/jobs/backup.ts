import { QmpError } from '../../qmp/errors.ts';
import { BitmapData } from '../bitmap/bitmap-data.ts';
import type { DirtyBitmap } from '../bitmap/dirty-bitmap.ts';
import { checkBitmapPermission } from '../bitmap/permissions.ts';
import { allocatedRuns } from '../block-status.ts';
import { FrozenBitmap, type BitmapSyncMode } from '../bitmap/successor.ts';
import { CopyBeforeWriteDriver, type CopyFailure } from '../drivers/copy-before-write.ts';
import { measureDue, now } from '../throttle/completion.ts';
import { throttledBelow } from '../drivers/throttle.ts';
import type { BlockGraph } from '../graph.ts';
import type { BlockNode, ChildLink } from '../node.ts';
import type { Job, JobDriver } from './job.ts';
import type { JobList, JobOptions } from './job-list.ts';
import { RateLimit } from './rate-limit.ts';
import { blockCopyClusterSize } from '../block-copy.ts';
import { ENOSPC } from '../../errno.ts';

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

const ALLOCATION_GRANULARITY = 512;
const INT_MAX = 2147483647;
const YIELD_EVERY_MS = 4;
/** block-copy moves at most this much per request. */
const MAX_CHUNK = 1 << 20;
const MAX_WORKERS = 64;

/** Which error action each on-*-error policy takes for an errno. */
const ERROR_ACTIONS: Record<OnError, (errno: number) => 'report' | 'ignore' | 'stop'> = {
  report: () => 'report',
  ignore: () => 'ignore',
  stop: () => 'stop',
  enospc: (errno) => (errno === ENOSPC ? 'stop' : 'report'),
  auto: () => 'report',
};

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
  if (request.compress && !target.driver.writeCompressed) {
    throw new QmpError('Compression is not supported for this drive ');
  }
  for (const node of [source, target]) {
    const holder = jobs.blockerOf(node);
    if (holder) throw new QmpError(`Node '${node.nodeName}' is busy: block device is in use by block job: ${holder.type}`);
  }
  if (request.maxWorkers !== undefined && (request.maxWorkers < 1 || request.maxWorkers > INT_MAX)) {
    throw new QmpError(`max-workers must be between 1 and ${INT_MAX}`);
  }
  if (request.maxChunk !== undefined && request.maxChunk < 0) {
    throw new QmpError('max-chunk must be zero (which means no limit) or positive');
  }
  if (bitmap && mode !== 'never') checkBitmapPermission(bitmap, 'backup');
  if (source.size() !== target.size()) throw new QmpError('Source and target image have different sizes');
}

/**
 * A running backup: a copy-before-write filter above the source whose copy
 * set (an unnamed bitmap on the source, as QEMU's block-copy keeps it) the
 * copy loop drains, the frozen sync bitmap, and the rate limit.
 */
export class BackupJob implements JobDriver {
  readonly type = 'backup';
  private readonly cbw: CopyBeforeWriteDriver;
  /** The filter's link to the source: a snapshot of the source moves it to the overlay, as QEMU moves the filter's file child. */
  private readonly sourceLink: ChildLink;
  private readonly filter: BlockNode;
  readonly frozen: FrozenBitmap | undefined;
  private readonly rateLimit = new RateLimit();
  private lastYield = performance.now();
  /** Bytes per copy request: 1 MiB, or less with x-perf max-chunk. */
  private readonly maxChunk: number;
  /** Copy requests QEMU keeps in flight (x-perf max-workers). */
  private readonly maxWorkers: number;
  /** A throttled target counts every 1 MiB request, so zero runs are not merged. */
  private readonly throttledTarget: boolean;
  private job!: Job;

  private constructor(
    private readonly graph: BlockGraph,
    private readonly request: BackupRequest,
    private readonly sync: BackupSync,
    bitmap: DirtyBitmap | undefined,
    private readonly mode: BitmapSyncMode | undefined,
    clusterSize: number,
  ) {
    const { source, target } = request;
    this.frozen = bitmap && new FrozenBitmap(source, bitmap);
    // With sync=none nothing is copied in the background, but every first guest write is.
    this.sourceLink = source.asChild();
    this.cbw = new CopyBeforeWriteDriver(this.sourceLink, target.asChild(), {
      copySet: sync === 'bitmap' ? bitmap!.data : sync === 'top' ? allocatedBits(source) : undefined,
      clusterSize,
      compress: request.compress,
    });
    this.maxChunk = request.maxChunk ? Math.min(MAX_CHUNK, request.maxChunk) : MAX_CHUNK;
    this.maxWorkers = request.maxWorkers ?? MAX_WORKERS;
    this.throttledTarget = throttledBelow(target);
    this.cbw.onCopied = (bytes) => {
      if (this.job) this.job.progressCurrent += bytes;
    };
    this.filter = graph.insertFilter(source, this.cbw, request.filterNodeName, this.sourceLink);
  }

  /**
   * Checks, builds the job in state `created` and attaches it to its nodes.
   * The caller starts it (transaction commit) or cancels it (abort).
   */
  static create(graph: BlockGraph, jobs: JobList, request: BackupRequest, options: Pick<JobOptions, 'group'>): Job {
    const { bitmap, mode, sync } = checkBackupArguments(request);
    checkNodes(request, jobs, bitmap, mode);
    // QEMU creates the filter here; its name is checked, then its copy unit chosen (with a warning) before max-chunk.
    graph.checkFilterName(request.filterNodeName);
    const clusterSize = blockCopyClusterSize(request.target, graph.warn);
    if (request.maxChunk && request.maxChunk < clusterSize) {
      throw new QmpError(`Required max-chunk (${request.maxChunk}) is less than backup cluster size (${clusterSize})`);
    }
    const backup = new BackupJob(graph, request, sync, bitmap, mode, clusterSize);
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
    jobs.attachNodes(job, [request.target, backup.filter]);
    request.target.users.add(`job ${job.id}`);
    job.progressTotal = backup.cbw.copySet.data.dirtyBytes();
    try {
      job.setSpeed(request.speed ?? 0);
    } catch (error) {
      job.earlyFail();
      backup.clean();
      backup.frozen?.resolve(mode!, 'failure', backup.cbw.copySet.data);
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
    for (;;) {
      const result = await this.pass(job);
      if (result !== null) return result;
    }
  }

  /**
   * One pass over the copy set as it is now: 0 when done or cancelled, -errno
   * when the job fails, null to go again over what an ignored or stopped
   * error left. The copy set only shrinks meanwhile (guest writes copy
   * ahead), so a copy of it, re-checked against the live set before each
   * copy, sees everything.
   *
   * QEMU's block-copy keeps up to max-workers requests in flight and learns
   * of a failure only when they are done: so do the copies here, in windows
   * that end at max-workers requests or at a rate-limit wait.
   */
  private async pass(job: Job): Promise<number | null> {
    const plan = this.cbw.copySet.data.snapshot();
    const planned = this.cbw.writeCopies;
    let failure: CopyFailure | null = null;
    let inFlight = 0;
    for (const [first, end] of plan.dirtyRuns()) {
      let cursor = first;
      while (cursor < end) {
        if (job.isCancelled()) return 0;
        const wait = this.rateLimit.delay(0);
        if (wait > 0 || inFlight >= this.maxWorkers) {
          if (failure) return this.failed(job, failure);
          inFlight = 0;
          if (wait > 0) {
            await job.sleep(wait);
            continue;
          }
        }
        const piece = this.cbw.writeCopies === planned ? this.plannedPiece(cursor, end) : this.livePiece(cursor, end);
        if (!piece) break;
        this.rateLimit.delay(piece.length);
        const progressBefore = job.progressCurrent;
        const copied = measureDue(() => this.cbw.copy(piece.offset, piece.length));
        if ('error' in copied.outcome) throw copied.outcome.error;
        failure ??= copied.outcome.value;
        inFlight++;
        cursor = piece.endCluster;
        // A throttled target: the job waits, as QEMU's copy waits for its throttle group,
        // and the copy counts as progress once its write is through.
        const throttled = copied.dueAt - now();
        if (throttled > 0) {
          const progress = job.progressCurrent - progressBefore;
          job.progressCurrent -= progress;
          await job.waitForIo(throttled * 1e6);
          job.progressCurrent += progress;
        }
        if (!failure) await this.pace(job);
      }
    }
    return failure ? this.failed(job, failure) : 0;
  }

  /** Reports a failed copy: the job fails, or (ignore, stop) goes on after a pause point. */
  private async failed(job: Job, failure: CopyFailure): Promise<number | null> {
    if (this.reportError(failure.operation, failure.errno) === 'report') return -failure.errno;
    await job.sleep(0);
    return null;
  }

  /**
   * Nothing was copied ahead of a guest write since the plan was made, so the
   * plan's run is still exact. Without a rate limit or a throttled target, a run
   * that reads as zeroes goes in one piece (the final progress is the same, only sooner).
   */
  private plannedPiece(cursor: number, end: number): { offset: number; length: number; endCluster: number } {
    const { granularity, diskSize } = this.cbw.copySet.data;
    const window = Math.max(1, Math.floor(this.maxChunk / granularity));
    const bytes = (first: number, last: number) => Math.min(last * granularity, diskSize) - first * granularity;
    let last = Math.min(end, cursor + window);
    if (this.job.speed === 0 && !this.throttledTarget && this.cbw.sourceReadsAsZero(cursor * granularity, bytes(cursor, last))) {
      // Growing steps keep a long zero run cheap; a step that is not all zeroes is retried
      // one window at a time, so the piece still ends at the first window with data.
      let step = window;
      while (last < end) {
        const next = Math.min(end, last + step);
        if (this.cbw.sourceReadsAsZero(last * granularity, bytes(last, next))) {
          last = next;
          step *= 2;
        } else if (step > window) step = window;
        else break;
      }
    }
    return { offset: cursor * granularity, length: bytes(cursor, last), endCluster: last };
  }

  /** From `cursor`, the next run of clusters still to copy, at most MAX_CHUNK long, within `end`. */
  private livePiece(cursor: number, end: number): { offset: number; length: number; endCluster: number } | undefined {
    const data = this.cbw.copySet.data;
    let first = cursor;
    while (first < end && !data.getChunk(first)) first++;
    if (first >= end) return undefined;
    const limit = Math.min(end, first + Math.max(1, Math.floor(this.maxChunk / data.granularity)));
    let last = first + 1;
    while (last < limit && data.getChunk(last)) last++;
    const offset = first * data.granularity;
    return { offset, length: Math.min(last * data.granularity, data.diskSize) - offset, endCluster: last };
  }

  /** Yields to the event loop every few milliseconds of copying, so the monitor stays responsive. */
  private async pace(job: Job): Promise<void> {
    if (performance.now() - this.lastYield < YIELD_EVERY_MS) return;
    await job.sleep(0);
    this.lastYield = performance.now();
  }

  private reportError(operation: 'read' | 'write', errno: number): 'report' | 'ignore' | 'stop' {
    const policy = (operation === 'read' ? this.request.onSourceError : this.request.onTargetError) ?? 'report';
    const action = ERROR_ACTIONS[policy](errno);
    this.job.emitEvent('BLOCK_JOB_ERROR', { device: this.job.id, operation, action });
    if (action === 'stop') this.job.pauseForError(errno === ENOSPC ? 'nospace' : 'failed');
    return action;
  }

  commit(): void {
    this.frozen?.resolve(this.mode!, 'success', this.cbw.copySet.data);
  }

  abort(): void {
    this.frozen?.resolve(this.mode!, 'failure', this.cbw.copySet.data);
  }

  clean(): void {
    this.undo(false);
    this.request.target.users.delete(`job ${this.job.id}`);
    this.request.onClean?.();
  }

  /** Takes the filter away again; before the job exists, unfreezes the bitmap too. */
  private undo(unfreeze: boolean): void {
    this.graph.removeFilter(this.filter);
    if (unfreeze) this.frozen?.resolve(this.mode!, 'failure', this.cbw.copySet.data);
  }
}

/** sync=top copies what the source itself has allocated. */
function allocatedBits(source: BlockNode): BitmapData | undefined {
  const size = source.size();
  const runs = [...allocatedRuns(source, 0, size)];
  // Everything allocated is the copy set's default.
  if (runs.length === 1 && runs[0]![0] === 0 && runs[0]![1] === size) return undefined;
  const bits = new BitmapData({ diskSize: size, granularity: ALLOCATION_GRANULARITY });
  for (const [start, end] of runs) bits.markRange(start, end - start);
  return bits;
}
