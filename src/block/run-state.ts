
export type VmRunState = 'prelaunch' | 'running' | 'paused';

/**
 * The VM run state qblockd reports: it has no guest, but tools ask for it
 * first (query-status), and `-S` / `stop` / `cont` move it as QEMU's do.
 */
export class RunState {
  constructor(
    public state: VmRunState,
    readonly name: string | undefined,
    private readonly emit: (event: 'STOP' | 'RESUME') => void,
  ) {}

  stop(): void {
    if (this.state !== 'running') return;
    this.state = 'paused';
    this.emit('STOP');
  }

  cont(): void {
    if (this.state === 'running') return;
    this.state = 'running';
    this.emit('RESUME');
  }

}
