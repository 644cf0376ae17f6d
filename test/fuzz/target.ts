import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { QBLOCKD, exchangeUntilClose, waitFor, type ExchangeStep } from '../support/daemon.ts';
import { buildImage } from '../support/qcow2-images.ts';
import type { FuzzCase } from './cases.ts';

/** What one case did to one program. */
export interface Outcome {
  /** Every line after the greeting (and after the negotiation reply when the case negotiates), normalised. */
  lines: string[];
  /** query-named-block-nodes and query-block-exports afterwards, normalised; empty if the program died. */
  state: string[];
  survived: boolean;
  hung: boolean;
  /** How the process ended when it did not survive: "signal SIGSEGV", "exit 1". */
  exit?: string;
}

export const PROGRAMS = { qblockd: QBLOCKD, qemu: 'qemu-system-x86_64' } as const;
export type ProgramName = keyof typeof PROGRAMS;

/**
 * The launch line every target gets: a null-co node, a qcow2 image over a file node,
 * and a -drive device. Paths are relative to the target's private directory.
 */
function launchLine(dir: string): string[] {
  return [
    '-M', 'none', '-nodefaults', '-display', 'none',
    '-blockdev', 'driver=null-co,node-name=n0,size=16777216',
    '-blockdev', `driver=file,node-name=f1,filename=${dir}/disk.qcow2`,
    '-blockdev', 'driver=qcow2,node-name=q1,file=f1',
    '-drive', 'if=none,id=d0,driver=null-co',
    '-qmp', `unix:${dir}/qmp.sock,server=on,wait=off`,
  ];
}

const NEGOTIATE = '{"execute": "qmp_capabilities"}\n';
const SYNC_ID = 'qblockd-fuzz-sync';
const SYNC = `\n{"execute": "query-jobs", "id": "${SYNC_ID}"}\n`;
const SYNC_WAIT_MS = 500;
/**
 * Job states that change by themselves soon. The rest of a job's life after its
 * first yield runs whenever QEMU's thread pool answers: before, between or after
 * the next replies, even after the connection closed. The sync is repeated
 * until no job is in one of these states, so both programs' jobs end (or stop)
 * before the case does.
 */
const MOVING_JOB_STATES = new Set(['undefined', 'created', 'running', 'waiting', 'pending', 'aborting']);
const SYNC_REPEAT_MS = 10;
const SYNC_ROUNDS = 100;
const STATE_PROBE = '{"execute": "qmp_capabilities"}\n{"execute": "query-named-block-nodes"}\n{"execute": "query-block-exports"}\n';

const QEMU_START_ATTEMPTS = 5;

/** The program died by a signal before it greeted. */
class StartCrash extends Error {}

/** One long-running program (qblockd or QEMU) that runs case after case, restarted after a crash or hang. */
export class Target {
  /** Times QEMU died by a signal while starting, and was started again. */
  startCrashes = 0;
  private child: ChildProcess | null = null;
  private dir = '';
  private stderr = '';

  constructor(
    readonly name: ProgramName,
    private readonly caseTimeoutMs: number,
  ) {}

  /**
   * Starts the program. QEMU 7.2 sometimes dies by SIGSEGV while it starts, under load,
   * when a client connects (as the readiness probe below does) while the QMP monitor moves
   * its socket from the main loop to its I/O thread: both threads then watch the socket
   * and the main loop polls a source the other freed (core: qio_channel_create_watch ->
   * object_get_class in the main loop; a race reported on qemu-devel in 2021 and fixed
   * upstream only in late 2025). It has nothing to do with any case: such a start is
   * counted and tried again.
   */
  async start(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.startOnce();
      } catch (error) {
        if (!(error instanceof StartCrash) || this.name !== 'qemu' || attempt >= QEMU_START_ATTEMPTS) throw error;
        this.startCrashes++;
        fs.rmSync(this.dir, { recursive: true, force: true });
      }
    }
  }

  private async startOnce(): Promise<void> {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `qblockd-fuzz-${this.name}-`));
    fs.writeFileSync(path.join(this.dir, 'disk.qcow2'), buildImage({ virtualSize: 16 << 20 }));
    fs.writeFileSync(path.join(this.dir, 'raw.img'), Buffer.alloc(1 << 20));
    this.stderr = '';
    const child = spawn(PROGRAMS[this.name], launchLine(this.dir), { cwd: this.dir, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-4000)));
    this.child = child;
    const socket = path.join(this.dir, 'qmp.sock');
    await waitFor(() => fs.existsSync(socket) || child.exitCode !== null, 10_000);
    // Ready once a connection gets the greeting: a socket file may exist a moment before it accepts.
    const deadline = Date.now() + 20_000;
    while (child.exitCode === null && child.signalCode === null && Date.now() < deadline) {
      const { lines } = await this.exchange(Buffer.alloc(0));
      if (lines?.[0]?.startsWith('{"QMP"')) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    if (child.exitCode !== null || child.signalCode !== null) {
      await new Promise((resolve) => (child.stderr!.readableEnded ? resolve(null) : child.stderr!.once('close', resolve)));
      const message = `${this.name} exited at start (code ${child.exitCode}, signal ${child.signalCode}): ${this.stderr}`;
      throw child.signalCode ? new StartCrash(message) : new Error(message);
    }
    throw new Error(`${this.name} gave no greeting within 20 s: ${this.stderr}`);
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Runs one case on its own connection: sends everything, half-closes, and reads until the program closes. */
  async run(fuzzCase: FuzzCase): Promise<Outcome> {
    for (const [name, bytes] of Object.entries(fuzzCase.files ?? {})) fs.writeFileSync(path.join(this.dir, name), bytes);
    const input = Buffer.concat([Buffer.from(fuzzCase.negotiate ? NEGOTIATE : ''), substituteDir(fuzzCase.input, this.dir), Buffer.from(SYNC)]);
    const reply = await this.exchange(input, true);
    const skip = fuzzCase.negotiate ? 2 : 1;
    const lines = reply.lines === null ? [] : this.normalise(reply.lines).slice(skip);
    if (reply.lines === null) return { lines, state: [], survived: this.alive(), hung: true };
    const probe = await this.exchange(Buffer.from(STATE_PROBE));
    if (probe.lines === null) return { lines, state: [], survived: this.alive(), hung: true };
    if (probe.lines.length === 0 || !this.alive()) {
      // No answer to the probe: the process died (its exit may not be reported yet) or stopped answering.
      const exit = await this.exitStatus(1000);
      return { lines, state: [], survived: exit === null, hung: exit === null, ...(exit === null ? {} : { exit }) };
    }
    return { lines, state: this.normalise(probe.lines).slice(2), survived: true, hung: false };
  }

  /** The process's stderr tail, for reports. */
  stderrTail(): string {
    return this.stderr;
  }

  private alive(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** How the process ended, waiting up to `timeoutMs` for it; null if it is still running. */
  private async exitStatus(timeoutMs: number): Promise<string | null> {
    const child = this.child!;
    if (child.exitCode === null && child.signalCode === null) {
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        child.once('exit', () => resolve(clearTimeout(timer)));
      });
    }
    if (child.exitCode === null && child.signalCode === null) return null;
    return child.signalCode ? `signal ${child.signalCode}` : `exit ${child.exitCode}`;
  }

  /**
   * With `sync`, the sending side is shut down only once the sync request is answered
   * with no job moving (or once nothing has arrived for SYNC_WAIT_MS, when the case
   * left the parser inside a value that swallowed it):
   * QEMU drops requests still queued when it reads the end of input, so shutting down at
   * once would lose some of its replies to a case that makes many.
   */
  private async exchange(input: Buffer, sync = false): Promise<{ lines: string[] | null }> {
    const socketPath = path.join(this.dir, 'qmp.sock');
    let syncsSent = 1;
    const next = (text: string): ExchangeStep => {
      const answers = text.split('\r\n').filter((line) => line.includes(SYNC_ID));
      if (answers.length < syncsSent) return 'wait';
      if (syncsSent >= SYNC_ROUNDS || !jobsMoving(answers.at(-1)!)) return 'end';
      syncsSent++;
      return { send: SYNC, afterMs: SYNC_REPEAT_MS };
    };
    const options = sync ? { next, endAfterMs: SYNC_WAIT_MS } : {};
    const lines = await exchangeUntilClose(socketPath, input, this.caseTimeoutMs, options);
    return { lines: lines && lines.filter((line) => !line.includes(SYNC_ID)) };
  }

  private normalise(lines: string[]): string[] {
    return lines.map((line) =>
      line
        .replaceAll(this.dir, '@DIR@')
        .replace(/"timestamp": \{"seconds": \d+, "microseconds": \d+\}/g, '"timestamp": {"seconds": S, "microseconds": U}')
        .replace(/"package": "(?:[^"\\]|\\.)*"/g, '"package": "P"')
        .replace(/#block\d+/g, '#blockN'),
    );
  }
}

/** Whether a sync answer (query-jobs) lists a job in a state that changes by itself. */
function jobsMoving(answer: string): boolean {
  try {
    const jobs = (JSON.parse(answer) as { return?: unknown }).return;
    return Array.isArray(jobs) && jobs.some((job: { status?: string }) => MOVING_JOB_STATES.has(job.status ?? ''));
  } catch {
    return false;
  }
}

function substituteDir(input: Buffer, dir: string): Buffer {
  const marker = Buffer.from('@DIR@');
  const parts: Buffer[] = [];
  let from = 0;
  for (let at = input.indexOf(marker); at >= 0; at = input.indexOf(marker, from)) {
    parts.push(input.subarray(from, at), Buffer.from(dir));
    from = at + marker.length;
  }
  parts.push(input.subarray(from));
  return Buffer.concat(parts);
}
