import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const REPO = path.resolve(import.meta.dirname, '../..');
export const QBLOCKD = path.join(REPO, 'bin/qblockd');

/** A qblockd process started with QEMU-style arguments and a private monitor socket. */
export class DaemonProcess {
  readonly stderr: string[] = [];
  private constructor(
    readonly child: ChildProcess,
    readonly socketPath: string,
    readonly dir: string,
  ) {}

  /**
   * `program` defaults to qblockd; pass 'qemu-system-x86_64' to run QEMU itself with the same arguments.
   * `baseArgs` come first: `-M none -nodefaults -display none` unless given.
   */
  static async start(
    args: string[] = [],
    options: { socketPath?: string; program?: string; pretty?: boolean; env?: Record<string, string>; baseArgs?: string[] } = {},
  ): Promise<DaemonProcess> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-test-'));
    const socketPath = options.socketPath ?? path.join(dir, 'qmp.sock');
    const baseArgs = options.baseArgs ?? ['-M', 'none', '-nodefaults', '-display', 'none'];
    const child = spawn(options.program ?? QBLOCKD, [...baseArgs, ...args, options.pretty ? '-qmp-pretty' : '-qmp', `unix:${socketPath},server=on,wait=off`], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ...options.env },
    });
    const daemon = new DaemonProcess(child, socketPath, dir);
    child.stderr!.on('data', (chunk: Buffer) => daemon.stderr.push(chunk.toString()));
    await waitFor(() => fs.existsSync(socketPath) || child.exitCode !== null, 10_000);
    if (child.exitCode !== null) throw new Error(`qblockd exited: ${daemon.stderr.join('')}`);
    if (options.program) await daemon.awaitStartupDone();
    return daemon;
  }

  /** The socket file can appear a moment before the program listens on it (QEMU binds, then listens). */
  async connect(): Promise<RawClient> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await RawClient.connect(this.socketPath);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ECONNREFUSED' || attempt >= 50) throw error;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  }

  /**
   * QEMU accepts monitor connections before its start-up is over, and a client that connects that
   * early can be sent the RESUME event of the start before the greeting (seen about once in 150
   * starts), or once no greeting at all (qemu-storage-daemon). A first connection that waits for
   * the greeting (connecting again if none comes) and hangs up leaves every later one the
   * ordinary session the tests compare.
   */
  private async awaitStartupDone(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const probe = await this.connect();
      try {
        while (!(await probe.readLine(5_000)).includes('"QMP"'));
        return;
      } catch (error) {
        if (attempt >= 3) throw error;
      } finally {
        probe.close();
      }
    }
  }

  /** Connects and negotiates; the greeting is consumed. */
  async client(): Promise<RawClient> {
    const client = await this.connect();
    await client.readLine();
    await client.command({ execute: 'qmp_capabilities' });
    return client;
  }

  exited(): Promise<number | null> {
    if (this.child.exitCode !== null) return Promise.resolve(this.child.exitCode);
    return new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
      await this.exited();
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Line-oriented access to a QMP socket: exactly the bytes the daemon sends. */
export class RawClient {
  private buffered = '';
  private readonly waiters: Array<() => void> = [];
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk) => {
      this.buffered += chunk.toString('utf8');
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  static connect(socketPath: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(socketPath);
      socket.once('connect', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Next line without its CRLF; rejects after the timeout. */
  async readLine(timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = this.buffered.indexOf('\r\n');
      if (end >= 0) {
        const line = this.buffered.slice(0, end);
        this.buffered = this.buffered.slice(end + 2);
        return line;
      }
      if (this.closed) throw new Error('connection closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no line within ${timeoutMs} ms (have: ${JSON.stringify(this.buffered.slice(0, 200))})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Sends a request and returns the next non-event line, parsed. */
  async command(request: Record<string, unknown>): Promise<any> {
    this.send(JSON.stringify(request) + '\n');
    for (;;) {
      const line = await this.readLine();
      const message = JSON.parse(line);
      if (!('event' in message)) return message;
    }
  }

  /** Sends raw text and returns the next line exactly as sent by the daemon. */
  async exchange(text: string): Promise<string> {
    this.send(text);
    return this.readLine();
  }

  close(): void {
    this.socket.destroy();
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }
}

/** What exchangeUntilClose does next, decided from the text received so far. */
export type ExchangeStep = 'end' | 'wait' | { send: string; afterMs: number };

/**
 * Sends `input` on a fresh connection, shuts down the sending side, and returns every
 * line the program sends until it closes (CRLF removed); null if it has not closed
 * within the timeout. With `next`, the sending side stays open until `next`, asked
 * after every chunk, says 'end' (it may first have more sent), or until nothing has
 * arrived for `endAfterMs`.
 */
export function exchangeUntilClose(
  socketPath: string,
  input: Buffer | string,
  timeoutMs: number,
  options: { next?: (received: string) => ExchangeStep; endAfterMs?: number } = {},
): Promise<string[] | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(socketPath);
    let endTimer: NodeJS.Timeout | undefined;
    let sendTimer: NodeJS.Timeout | undefined;
    const endInput = () => {
      clearTimeout(endTimer);
      clearTimeout(sendTimer);
      if (!socket.writableEnded) socket.end();
    };
    const waitQuietly = () => {
      clearTimeout(endTimer);
      endTimer = setTimeout(endInput, options.endAfterMs ?? timeoutMs);
    };
    const finish = (lines: string[] | null) => {
      clearTimeout(timer);
      clearTimeout(endTimer);
      clearTimeout(sendTimer);
      socket.destroy();
      resolve(lines);
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    socket.on('connect', () => {
      if (!options.next) return void socket.end(input);
      socket.write(input);
      waitQuietly();
    });
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      if (!options.next || socket.writableEnded) return;
      const step = options.next(Buffer.concat(chunks).toString('utf8'));
      if (step === 'end') return endInput();
      if (step !== 'wait') sendTimer = setTimeout(() => socket.writableEnded || socket.write(step.send), step.afterMs);
      // Still answering: wait until it has been quiet for endAfterMs.
      waitQuietly();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      const lines = Buffer.concat(chunks).toString('utf8').split('\r\n');
      if (lines.at(-1) === '') lines.pop();
      finish(lines);
    });
  });
}

export async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
