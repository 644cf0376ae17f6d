import v8 from 'node:v8';
import vm from 'node:vm';

/** How long the daemon must see no command and send no event before its memory is looked at. */
const QUIET_MS = 6000;
/**
 * Growth of the resident set since start-up (or the last trim) that is worth a collection.
 * The first commands after a start grow it by 1-2 MiB (code loaded and compiled on first use);
 * a thousand qemu-io writes and an incremental backup of 16 TiB by 5-18 MiB.
 */
const WORTH_TRIMMING_BYTES = 4 << 20;

export interface MemoryTrimHooks {
  residentBytes(): number;
  /** Collects garbage and returns the free pages. */
  collectAndShrink(): void;
}

let collectGarbage: (() => void) | undefined;

/**
 * V8's own collector, reached through its `gc` extension. Two full collections: measured
 * after three 16 TiB backups, one released nothing visible, the second about 9 MiB (what
 * the first freed, array buffers among it, is only returned by the next).
 */
const v8Hooks: MemoryTrimHooks = {
  residentBytes: () => process.memoryUsage.rss(),
  collectAndShrink: () => {
    if (!collectGarbage) {
      v8.setFlagsFromString('--expose-gc');
      collectGarbage = vm.runInNewContext('gc') as () => void;
    }
    collectGarbage();
    collectGarbage();
  },
};

/**
 * Gives memory back once the daemon falls quiet after a burst of work (a backup,
 * a thousand qemu-io writes). V8 keeps the young generation it grew and the burst's
 * garbage until an allocation needs a collection, which a quiet daemon never makes
 * (after three incremental backups of 16 TiB: about 10 MiB more than one collection
 * leaves). Only after growth: a collection costs milliseconds and leaves about 2 MiB
 * of its own bookkeeping in malloc, so a quiet daemon that did not grow is left alone.
 */
export class MemoryTrim {
  private lastActivity = 0;
  private timer: NodeJS.Timeout | undefined;
  /** The resident set once started, then after each trim. */
  private baseline = Infinity;

  constructor(private readonly hooks: MemoryTrimHooks = v8Hooks) {}

  /** Start-up is done: growth counts from here. */
  started(): void {
    this.baseline = this.hooks.residentBytes();
  }

  /** A command ran, an event went out or an NBD client sent a request. Costs a clock read: the timer re-arms itself until quiet. */
  noteActivity(): void {
    this.lastActivity = performance.now();
    if (this.timer === undefined) this.arm(QUIET_MS);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.onTimer(), ms);
    this.timer.unref();
  }

  private onTimer(): void {
    this.timer = undefined;
    const quietFor = performance.now() - this.lastActivity;
    if (quietFor < QUIET_MS) return this.arm(QUIET_MS - quietFor);
    const resident = this.hooks.residentBytes();
    if (resident - this.baseline < WORTH_TRIMMING_BYTES) return;
    this.hooks.collectAndShrink();
    this.baseline = this.hooks.residentBytes();
  }
}
