/** What the daemon looks like to a watcher, taken cheaply: everything but the bits, and each bitmap's count and version. */
export interface WatchedState {
  /** Changes whenever nodes, bitmaps (other than their counts), devices, exports, jobs or clients do. */
  shape: string;
  /** One entry per bitmap, keyed by node and name. */
  bitmaps: Map<string, { node: string; name: string; count: number; version: number }>;
}

export interface ChangeListener {
  graphChanged(): void;
  bitmapChanged(node: string, name: string, count: number): void;
}

/**
 * Turns "something may have changed" (a command ran, an event went out) into
 * x-qblockd change notifications: it compares the state with the last one it
 * reported and looks at most once per interval, so a flood of guest writes
 * costs one comparison and at most one notification per bitmap per interval.
 * While something changes unprompted (a job running), it keeps looking each interval.
 */
export class ChangeWatch {
  private lastShape: string;
  private lastVersions: Map<string, number>;
  private lastCheck = -Infinity;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly snapshot: () => WatchedState,
    private readonly listener: ChangeListener,
    private readonly intervalMs: number,
    /** True while the state changes with no command or event to say so (a running job's progress). */
    private readonly changingUnprompted: () => boolean,
  ) {
    const state = snapshot();
    this.lastShape = state.shape;
    this.lastVersions = versionsOf(state);
  }

  /** Something may have changed: look as soon as the interval allows. */
  poke(): void {
    if (this.timer) return;
    const wait = Math.max(0, this.lastCheck + this.intervalMs - performance.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      this.check();
    }, wait);
  }

  /** Compares now and reports what differs. */
  check(): void {
    this.lastCheck = performance.now();
    const state = this.snapshot();
    if (state.shape !== this.lastShape) {
      this.lastShape = state.shape;
      this.listener.graphChanged();
    }
    for (const [key, bitmap] of state.bitmaps) {
      if (this.lastVersions.get(key) !== bitmap.version) this.listener.bitmapChanged(bitmap.node, bitmap.name, bitmap.count);
    }
    this.lastVersions = versionsOf(state);
    if (this.changingUnprompted()) this.poke();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

function versionsOf(state: WatchedState): Map<string, number> {
  return new Map([...state.bitmaps].map(([key, bitmap]) => [key, bitmap.version]));
}
