import { QmpError } from '../../qmp/errors.ts';
import { ECANCELED, EIO, strerror } from '../../errno.ts';

/**
 * QEMU's job states. created: made, not started. running / paused: the copy
 * loop runs or sits at a pause point (user pause or a drain). ready / standby:
 * a job that waits for `complete` (and its paused form). waiting: finished,
 * its transaction's other jobs are not. pending: every job of the group
 * finished; finalize applies the results. aborting: failed or cancelled,
 * undoing. concluded: results applied, waiting to be dismissed. null: gone.
 */
export const JOB_STATUSES = [
  'undefined', 'created', 'running', 'paused', 'ready', 'standby', 'waiting', 'pending', 'aborting', 'concluded', 'null',
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** Which state may follow which (QEMU's JobSTT). */
export const JOB_TRANSITIONS: Record<JobStatus, readonly JobStatus[]> = {
  undefined: ['created'],
  created: ['running', 'aborting', 'null'],
  running: ['paused', 'ready', 'waiting', 'aborting'],
  paused: ['running'],
  ready: ['standby', 'waiting', 'aborting'],
  standby: ['ready'],
  waiting: ['pending', 'aborting'],
  pending: ['aborting', 'concluded'],
  aborting: ['aborting', 'concluded'],
  concluded: ['null'],
  null: [],
};

export const JOB_VERBS = ['cancel', 'pause', 'resume', 'set-speed', 'complete', 'finalize', 'dismiss', 'change'] as const;
export type JobVerb = (typeof JOB_VERBS)[number];

const UNTIL_FINISHED: readonly JobStatus[] = ['created', 'running', 'paused', 'ready', 'standby'];

/** In which states each verb is accepted (QEMU's JobVerbTable). */
export const JOB_VERB_STATES: Record<JobVerb, readonly JobStatus[]> = {
  cancel: ['created', 'running', 'paused', 'ready', 'standby', 'waiting', 'pending'],
  pause: UNTIL_FINISHED,
  resume: UNTIL_FINISHED,
  'set-speed': UNTIL_FINISHED,
  complete: ['ready', 'standby'],
  finalize: ['pending'],
  dismiss: ['concluded'],
  change: UNTIL_FINISHED,
};

const COMPLETED_STATES: ReadonlySet<JobStatus> = new Set(['waiting', 'pending', 'aborting', 'concluded', 'null']);

/** The job types that are block jobs: only they send BLOCK_JOB_* events and answer block-job-* and query-block-jobs. */
const BLOCK_JOB_TYPES: ReadonlySet<string> = new Set(['backup', 'commit', 'mirror', 'stream']);

/** What a kind of job (backup, ...) plugs into the common machinery. */
export interface JobDriver {
  readonly type: string;
  /**
   * The work itself: 0 or a negative errno, returned as such when the work
   * ended before its first yield, else as a promise (see Job.start).
   */
  run(job: Job): number | Promise<number>;
  prepare?(job: Job): number;
  commit?(job: Job): void;
  abort?(job: Job): void;
  clean?(job: Job): void;
  /** Returns whether the cancel is forced (a backup is always force-cancelled). */
  cancel?(job: Job, force: boolean): boolean;
  setSpeed?(job: Job, speed: number): void;
}

export interface JobEventSink {
  emit(name: string, data: Record<string, unknown>): void;
  /** The job reached null: forget it. */
  removed(job: Job): void;
}

/** Jobs that finish together: one failure cancels the others (completion-mode grouped). */
export class JobGroup {
  /** Newest first, as QEMU keeps them. */
  readonly jobs: Job[] = [];
  aborting = false;
}

/**
 * One job and QEMU's state machine around it. The driver's `run` is the
 * coroutine: it calls `sleep()` between chunks, which is where pauses,
 * drains and cancellation take hold. Whoever wakes a paused job emits the
 * transition back, so a drain's paused/running pair is emitted in order
 * within the command that drains.
 */
export class Job {
  status: JobStatus = 'undefined';
  speed = 0;
  progressCurrent = 0;
  progressTotal = 0;
  busy = false;
  paused = true;
  userPaused = false;
  cancelled = false;
  forceCancel = false;
  ret = 0;
  error: string | undefined;
  readonly autoFinalize: boolean;
  readonly autoDismiss: boolean;
  group: JobGroup;
  ioStatus: 'ok' | 'failed' | 'nospace' = 'ok';
  private pauseCount = 1;
  private started = false;
  private deferredToMainLoop = false;
  private wake: (() => void) | null = null;
  private sleepTimer: NodeJS.Timeout | null = null;
  /** In waitForIo: a cancel waits for the I/O to end. */
  private waitingForIo = false;
  /** While in sleep(): when it ends (ms since the epoch; 0: next turn; null: when woken). */
  private sleepUntil: number | null | undefined;
  private statusBeforePause: JobStatus = 'running';

  constructor(
    readonly id: string,
    readonly driver: JobDriver,
    options: { autoFinalize: boolean; autoDismiss: boolean; group?: JobGroup },
    private readonly events: JobEventSink,
  ) {
    this.autoFinalize = options.autoFinalize;
    this.autoDismiss = options.autoDismiss;
    this.group = options.group ?? new JobGroup();
    this.group.jobs.unshift(this);
    this.transition('created');
  }

  get type(): string {
    return this.driver.type;
  }

  get isBlockJob(): boolean {
    return BLOCK_JOB_TYPES.has(this.type);
  }

  /** BlockJobInfo's `paused`: a pause (user, drain, or not yet started) is requested. */
  get pauseRequested(): boolean {
    return this.pauseCount > 0;
  }

  isCompleted(): boolean {
    return COMPLETED_STATES.has(this.status);
  }

  isCancelled(): boolean {
    return this.forceCancel;
  }

  /** Throws QEMU's error when `verb` is not accepted in the current state. */
  checkVerb(verb: JobVerb): void {
    if (!JOB_VERB_STATES[verb].includes(this.status)) {
      throw new QmpError(`Job '${this.id}' in state '${this.status}' cannot accept command verb '${verb}'`);
    }
  }

  // ---- the coroutine side ----------------------------------------------

  /**
   * QEMU enters the job's coroutine inside job_start, so the driver runs within
   * the command that starts it, up to its first yield. A run that ends there
   * leaves job_exit to a bottom half of the main loop, which runs before the
   * monitor (whose dispatcher lives in another context) sends the command's
   * reply: such a job completes within the command.
   */
  start(): void {
    this.started = true;
    this.pauseCount--;
    this.busy = true;
    this.paused = false;
    this.transition('running');
    if (this.pauseCount > 0 && !this.isCancelled()) void this.pausePoint().then(() => this.runDriver());
    else this.runDriver();
  }

  /**
   * Yields to the event loop for `ns` nanoseconds (0: one turn; null: until
   * woken by a resume or a cancel), then passes
   * a pause point. Returns early when the job is cancelled.
   */
  async sleep(ns: number | null): Promise<void> {
    if (this.isCancelled()) return;
    if (this.pauseCount === 0) {
      await new Promise<void>((resolve) => {
        this.busy = false;
        this.wake = resolve;
        this.sleepUntil = ns === null ? null : ns === 0 ? 0 : Date.now() + Math.ceil(ns / 1e6);
        this.armTimer();
      });
      this.sleepUntil = undefined;
    }
    await this.pausePoint();
  }

  /** Waits `ns` for I/O in flight (a throttled target's writes): a cancel does not cut it short, as QEMU's job waits for its requests. */
  async waitForIo(ns: number): Promise<void> {
    this.waitingForIo = true;
    try {
      await this.sleep(ns);
    } finally {
      this.waitingForIo = false;
    }
  }

  /** (Re)starts the timer of the current sleep; an endless sleep (job_yield) has none. */
  private armTimer(): void {
    const until = this.sleepUntil;
    if (until === null || until === undefined) return;
    const wakeUp = () => {
      this.sleepTimer = null;
      this.enter();
    };
    this.sleepTimer =
      until === 0 ? (setImmediate(wakeUp) as unknown as NodeJS.Timeout) : setTimeout(wakeUp, Math.min(Math.max(until - Date.now(), 0), 2 ** 31 - 1));
  }

  private async pausePoint(): Promise<void> {
    if (this.pauseCount === 0 || this.isCancelled()) return;
    await new Promise<void>((resolve) => {
      this.enterPause();
      this.wake = resolve;
    });
  }

  private enterPause(): void {
    this.statusBeforePause = this.status;
    this.transition(this.status === 'ready' ? 'standby' : 'paused');
    this.paused = true;
    this.busy = false;
  }

  /** Wakes the coroutine from a sleep or a pause, as job_enter does. */
  private enter(): void {
    if (!this.started || this.deferredToMainLoop || !this.wake) return;
    this.clearTimer();
    if (!this.paused && this.pauseCount > 0 && !this.isCancelled()) {
      // Woken from a sleep into a pause point: it stops there at once.
      this.enterPause();
      return;
    }
    if (this.paused) {
      this.paused = false;
      this.transition(this.statusBeforePause);
      // Paused in the middle of a sleep: QEMU's job wakes, finds its delay not over and sleeps
      // again at once; staying asleep is the same, and keeps the job where a drain finds it.
      if (this.sleepUntil !== undefined && !this.isCancelled()) {
        this.armTimer();
        return;
      }
    }
    const wake = this.wake;
    this.wake = null;
    this.busy = true;
    wake();
  }

  private clearTimer(): void {
    if (this.sleepTimer) {
      clearTimeout(this.sleepTimer);
      clearImmediate(this.sleepTimer as unknown as NodeJS.Immediate);
    }
    this.sleepTimer = null;
  }

  private runDriver(): void {
    let ret: number | Promise<number>;
    try {
      ret = this.driver.run(this);
    } catch (error) {
      ret = this.failure(error);
    }
    if (typeof ret === 'number') this.exit(ret, 'within the command');
    else void ret.catch((error: unknown) => this.failure(error)).then((value) => this.exit(value, 'next turn'));
  }

  private failure(error: unknown): number {
    this.error = error instanceof Error ? error.message : String(error);
    return -EIO;
  }

  /** job_co_entry's end and job_exit. */
  private exit(ret: number, when: 'within the command' | 'next turn'): void {
    if (this.isCompleted()) return; // finished synchronously by a group abort
    this.ret = ret;
    this.deferredToMainLoop = true;
    this.busy = true;
    const exit = () => {
      if (this.isCompleted()) return;
      this.busy = false;
      this.completed();
    };
    if (when === 'within the command') exit();
    else setImmediate(exit);
  }

  // ---- pause, resume, drain --------------------------------------------

  pause(): void {
    this.pauseCount++;
    if (!this.paused) this.enter();
  }

  resume(): void {
    this.pauseCount--;
    if (this.pauseCount > 0) return;
    if (this.sleepTimer === null) this.enter();
  }

  /** A drained section around the job's nodes: the paused/running pair QEMU emits. */
  drain(): void {
    this.pause();
    this.resume();
  }

  userPause(): void {
    this.checkVerb('pause');
    if (this.userPaused) throw new QmpError('Job is already paused');
    this.userPaused = true;
    this.pause();
  }

  userResume(): void {
    if (!this.userPaused || this.pauseCount <= 0) throw new QmpError("Can't resume a job that was not paused");
    this.checkVerb('resume');
    this.ioStatus = 'ok';
    this.userPaused = false;
    this.resume();
  }

  /** An I/O error whose policy is `stop`: the job pauses as if the user had paused it. */
  pauseForError(ioStatus: 'failed' | 'nospace'): void {
    this.ioStatus = ioStatus;
    if (this.userPaused) return;
    this.userPaused = true;
    this.pause();
  }

  setSpeed(speed: number): void {
    this.checkVerb('set-speed');
    if (speed < 0) throw new QmpError("Parameter 'speed' expects a non-negative value");
    this.driver.setSpeed?.(this, speed);
    this.speed = speed;
    // A rate-limited job sleeps on a timer: wake it so the new speed applies now.
    if (!this.paused && this.sleepTimer) this.enter();
  }

  // ---- cancel, finalize, dismiss ---------------------------------------

  userCancel(force: boolean): void {
    this.checkVerb('cancel');
    this.cancel(force);
  }

  /** block-job-cancel refuses a user-paused job unless forced. */
  userCancelBlockJob(force: boolean): void {
    if (this.userPaused && !force) throw new QmpError(`The block job for device '${this.id}' is currently paused`);
    this.userCancel(force);
  }

  /** No job kind here has a completion step (mirror's), so a job in ready never exists. */
  userComplete(): void {
    this.checkVerb('complete');
    throw new QmpError(`The active block job '${this.id}' cannot be completed`);
  }

  cancel(force: boolean): void {
    if (this.status === 'concluded') {
      this.dismissNow();
      return;
    }
    this.cancelAsync(force);
    if (!this.started) this.completed();
    else if (this.deferredToMainLoop) {
      if (this.isCancelled()) this.abortGroup();
    } else if (this.waitingForIo) {
      // The job sees the cancel once its requests are done.
    } else if (this.wake && this.isCancelled()) {
      // Parked in a sleep or a pause, not in I/O: QEMU's coroutine, entered by the cancel, runs to
      // its end and the job completes before the command's reply.
      this.finishCancelled();
    } else this.enter();
  }

  /** job_cancel_sync: force-cancels and finishes the job before returning (shutdown). */
  cancelSync(): void {
    this.cancel(true);
    if (!this.isCompleted()) this.finishCancelled();
  }

  private cancelAsync(force: boolean): void {
    const forced = this.driver.cancel ? this.driver.cancel(this, force) : true;
    if (this.userPaused) {
      this.userPaused = false;
      this.pauseCount--;
    }
    if (forced || !this.deferredToMainLoop) {
      this.cancelled = true;
      this.forceCancel ||= forced;
    }
  }

  userFinalize(): void {
    this.checkVerb('finalize');
    this.finalizeGroup();
  }

  userDismiss(): void {
    this.checkVerb('dismiss');
    this.dismissNow();
  }

  /** A job that failed before it started (job_early_fail). */
  earlyFail(): void {
    this.dismissNow();
  }

  // ---- completion (job_completed and the transaction logic) -----------

  private completed(): void {
    this.updateRc();
    if (this.ret) this.abortGroup();
    else this.succeedInGroup();
  }

  private updateRc(): void {
    if (!this.ret && this.isCancelled()) this.ret = -ECANCELED;
    if (this.ret) {
      this.error ??= strerror(-this.ret);
      this.transition('aborting');
    }
  }

  private succeedInGroup(): void {
    this.transition('waiting');
    if (this.group.jobs.some((job) => !job.isCompleted())) return;
    for (const job of [...this.group.jobs]) job.toPending();
    if (this.group.jobs.every((job) => job.autoFinalize)) this.finalizeGroup();
  }

  private toPending(): void {
    this.transition('pending');
    if (!this.autoFinalize && this.isBlockJob) this.events.emit('BLOCK_JOB_PENDING', { type: this.type, id: this.id });
  }

  private finalizeGroup(): void {
    const jobs = [...this.group.jobs];
    for (const job of jobs) {
      if (job.ret === 0 && job.driver.prepare) {
        job.ret = job.driver.prepare(job);
        job.updateRc();
      }
      if (job.ret) {
        this.abortGroup();
        return;
      }
    }
    for (const job of jobs) job.finalizeSingle();
  }

  private abortGroup(): void {
    const group = this.group;
    if (group.aborting) return;
    group.aborting = true;
    for (const other of group.jobs) if (other !== this) other.cancelAsync(true);
    while (group.jobs.length > 0) {
      const other = group.jobs[0]!;
      if (!other.isCompleted()) other.finishCancelled();
      other.finalizeSingle();
    }
  }

  /** job_finish_sync for a force-cancelled job: it stops at its current yield. */
  private finishCancelled(): void {
    this.clearTimer();
    this.wake = null;
    this.deferredToMainLoop = true;
    if (this.paused && this.started) {
      this.paused = false;
      this.transition(this.statusBeforePause);
    }
    this.completed();
  }

  private finalizeSingle(): void {
    this.updateRc();
    if (!this.ret) this.driver.commit?.(this);
    else this.driver.abort?.(this);
    this.driver.clean?.(this);
    if (this.started && this.isBlockJob) {
      if (this.isCancelled()) this.events.emit('BLOCK_JOB_CANCELLED', this.blockJobEvent());
      else {
        const data = this.blockJobEvent();
        if (this.ret) data.error = this.error;
        this.events.emit('BLOCK_JOB_COMPLETED', data);
      }
    }
    this.leaveGroup();
    this.transition('concluded');
    if (this.autoDismiss || !this.started) this.dismissNow();
  }

  private leaveGroup(): void {
    const index = this.group.jobs.indexOf(this);
    if (index >= 0) this.group.jobs.splice(index, 1);
  }

  private dismissNow(): void {
    this.busy = false;
    this.paused = false;
    this.deferredToMainLoop = true;
    this.leaveGroup();
    this.transition('null');
    this.events.removed(this);
  }

  emitEvent(name: string, data: Record<string, unknown>): void {
    this.events.emit(name, data);
  }

  blockJobEvent(): Record<string, unknown> {
    return { type: this.type, device: this.id, len: this.progressTotal, offset: this.progressCurrent, speed: this.speed };
  }

  private transition(next: JobStatus): void {
    const previous = this.status;
    if (!JOB_TRANSITIONS[previous].includes(next) && previous !== next) {
      throw new Error(`job ${this.id}: transition ${previous} -> ${next} is not allowed`);
    }
    this.status = next;
    if (previous !== next) this.events.emit('JOB_STATUS_CHANGE', { id: this.id, status: next });
  }
}
