import { QmpError } from '../../qmp/errors.ts';
import type { BlockJobInfo, JobInfo, JobStatus as QapiJobStatus, JobType } from '../../schema/generated/qapi-types.ts';
import type { BlockNode } from '../node.ts';
import { Job, type JobDriver, type JobEventSink, type JobGroup } from './job.ts';
import { isWellFormedId } from '../../qmp/well-formed-id.ts';

export interface JobOptions {
  autoFinalize: boolean;
  autoDismiss: boolean;
  group?: JobGroup;
}

/**
 * Every job by id, newest first (QEMU's order), and the two lookup families:
 * job-* commands answer GenericError "Job not found", block-job-* commands
 * DeviceNotActive "Block job 'x' not found".
 */
export class JobList {
  private readonly jobs: Job[] = [];
  private readonly nodesOf = new Map<Job, BlockNode[]>();
  private readonly quiesced = new Map<BlockNode, number>();
  private readonly sink: JobEventSink;

  constructor(emit: (name: string, data: Record<string, unknown>) => void) {
    this.sink = {
      emit,
      removed: (job) => {
        const index = this.jobs.indexOf(job);
        if (index >= 0) this.jobs.splice(index, 1);
        this.nodesOf.delete(job);
      },
    };
  }

  /** job_create's id checks, then the job in state created. */
  create(id: string, driver: JobDriver, options: JobOptions): Job {
    if (!isWellFormedId(id)) throw new QmpError(`Invalid job ID '${id}'`);
    if (this.find(id)) throw new QmpError(`Job ID '${id}' already in use`);
    const job = new Job(id, driver, options, this.sink);
    this.jobs.unshift(job);
    return job;
  }

  /**
   * The nodes a job holds as its own children (QEMU's block_job_add_bdrv): a drain
   * of any of them, or of a node below one, pauses the job, and each refuses to
   * take part in another job.
   */
  attachNodes(job: Job, nodes: BlockNode[]): void {
    this.nodesOf.set(job, nodes);
  }

  /** The job whose op blocker is on `node`, if any. */
  blockerOf(node: BlockNode): Job | undefined {
    return this.jobs.find((job) => this.nodesOf.get(job)?.includes(node));
  }

  find(id: string): Job | undefined {
    return this.jobs.find((job) => job.id === id);
  }

  get(id: string): Job {
    const job = this.find(id);
    if (!job) throw new QmpError('Job not found');
    return job;
  }

  getBlockJob(id: string): Job {
    const job = this.find(id);
    if (!job?.isBlockJob) throw new QmpError(`Block job '${id}' not found`, 'DeviceNotActive');
    return job;
  }

  all(): readonly Job[] {
    return this.jobs;
  }

  /** Whether a job is running: it has work waiting for the event loop. */
  anyRunning(): boolean {
    return this.jobs.some((job) => job.status === 'running');
  }

  /** Jobs that a drain of `node` reaches: it quiesces every parent above the node, and a job is a parent of its nodes. */
  jobsOn(node: BlockNode): Job[] {
    return this.jobs.filter((job) => this.nodesOf.get(job)?.some((held) => isAtOrAbove(held, node)));
  }

  /** Begins a drained section over `node`: every job it reaches pauses (sections nest). */
  drainBegin(node: BlockNode): void {
    this.quiesced.set(node, this.quiescedCount(node) + 1);
    for (const job of this.jobsOn(node)) job.pause();
  }

  /** Ends a drained section: the jobs resume, newest first (QEMU notifies the newest parent first). */
  drainEnd(node: BlockNode): void {
    const count = this.quiescedCount(node) - 1;
    if (count > 0) this.quiesced.set(node, count);
    else this.quiesced.delete(node);
    for (const job of this.jobsOn(node)) job.resume();
  }

  /** How many drained sections are open on `node`: a job attached inside them starts that many times paused. */
  quiescedCount(node: BlockNode): number {
    return this.quiesced.get(node) ?? 0;
  }

  /** A drained section over `node`: every job holding it pauses and resumes. */
  drain(node: BlockNode): void {
    this.drainBegin(node);
    this.drainEnd(node);
  }

  /**
   * bdrv_drain_all: every node drained, oldest first, then every drain ended in
   * the same order. A job is a parent of its own nodes only there, so it pauses
   * at the oldest of them and resumes at the newest.
   */
  drainAll(nodesOldestFirst: readonly BlockNode[]): void {
    const age = new Map(nodesOldestFirst.map((node, index) => [node, index]));
    const held = [...this.nodesOf].map(([job, nodes]) => {
      const ages = nodes.map((node) => age.get(node) ?? -1);
      return { job, oldest: Math.min(...ages), newest: Math.max(...ages) };
    });
    for (const { job } of held.sort((a, b) => a.oldest - b.oldest)) job.pause();
    for (const { job } of held.sort((a, b) => a.newest - b.newest)) job.resume();
  }

  /**
   * Shutdown: QEMU drains everything, then force-cancels every job and waits
   * for each (job_cancel_sync_all), so frozen bitmaps are merged back before
   * they are stored.
   */
  cancelAll(): void {
    for (const job of this.jobs) job.drain();
    while (this.jobs.length > 0) this.jobs[0]!.cancelSync();
  }

  queryJobs(): JobInfo[] {
    return this.jobs.map((job) => ({
      id: job.id,
      type: job.type as JobType,
      status: job.status as QapiJobStatus,
      'current-progress': job.progressCurrent,
      'total-progress': job.progressTotal,
      ...(job.ret && job.error !== undefined ? { error: job.error } : {}),
    }));
  }

  queryBlockJobs(): BlockJobInfo[] {
    return this.jobs.filter((job) => job.isBlockJob).map((job) => {
      const info: BlockJobInfo = {
        type: job.type,
        device: job.id,
        len: job.progressTotal,
        offset: job.progressCurrent,
        busy: job.busy,
        paused: job.pauseRequested,
        speed: job.speed,
        'io-status': job.ioStatus,
        ready: job.status === 'ready' || job.status === 'standby',
        status: job.status as QapiJobStatus,
        'auto-finalize': job.autoFinalize,
        'auto-dismiss': job.autoDismiss,
      };
      if (job.ret && job.error !== undefined) info.error = job.error;
      return info;
    });
  }
}

function isAtOrAbove(node: BlockNode, target: BlockNode): boolean {
  if (node === target) return true;
  return node.children.some((child) => isAtOrAbove(child, target)) || (node.backing !== undefined && isAtOrAbove(node.backing, target));
}
