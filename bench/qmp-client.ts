import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * Longer than any measured command takes (the slowest, a transaction over 10,000 bitmaps,
 * takes seconds): a program silent this long has hung, as qemu-storage-daemon 7.2 once did
 * with a request unread in its monitor socket.
 */
const SILENCE_LIMIT_MS = 120_000;

/** A greeting comes within milliseconds; one missing this long was lost, and the connection is made again. */
const GREETING_PATIENCE_MS = 5_000;
const GREETING_ATTEMPTS = 3;

/** A daemon under measurement: spawned with QEMU-style arguments, driven over its QMP socket. */
export class BenchDaemon {
  private buffer = '';
  private waiters: Array<() => void> = [];
  /** Events met while waiting for replies, for waitForEvent(). */
  private readonly events: Array<{ event: string; data?: Record<string, unknown> }> = [];
  private socket!: net.Socket;
  readonly spawnedAt: number;
  greetingMs = 0;

  private constructor(
    readonly child: ChildProcess,
    readonly socketPath: string,
    private readonly dir: string,
  ) {
    this.spawnedAt = performance.now();
  }

  static async start(program: string[], args: string[], storageDaemon: boolean): Promise<BenchDaemon> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-bench-'));
    const socketPath = path.join(dir, 'qmp.sock');
    const monitor = storageDaemon
      ? ['--chardev', `socket,id=m0,path=${socketPath},server=on,wait=off`, '--monitor', 'chardev=m0']
      : ['-qmp', `unix:${socketPath},server=on,wait=off`];
    const machine = storageDaemon ? [] : ['-M', 'none', '-nodefaults', '-display', 'none'];
    const child = spawn(program[0]!, [...program.slice(1), ...machine, ...args, ...monitor], { stdio: ['ignore', 'ignore', 'pipe'] });
    const daemon = new BenchDaemon(child, socketPath, dir);
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    while (!fs.existsSync(socketPath)) {
      if (child.exitCode !== null) throw new Error(`${program.join(' ')} exited: ${stderr.trim()}`);
      // Poll gently: a busy loop here would take a core from the daemon we are timing.
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await daemon.connect();
    return daemon;
  }

  /**
   * Connects as soon as the socket listens and waits for the greeting. A client that early can
   * be sent QEMU's start-up RESUME event first, and once (qemu-storage-daemon 7.2, one start in
   * a whole run) got no greeting at all: a new connection is greeted.
   */
  private async connect(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      this.socket = await this.open();
      this.buffer = '';
      this.socket.setEncoding('utf8');
      this.socket.on('data', (chunk: string) => {
        this.buffer += chunk;
        for (const waiter of this.waiters.splice(0)) waiter();
      });
      try {
        while (!(await this.readLine(attempt < GREETING_ATTEMPTS ? GREETING_PATIENCE_MS : SILENCE_LIMIT_MS)).includes('"QMP"'));
        this.greetingMs = performance.now() - this.spawnedAt;
        return;
      } catch (error) {
        if (attempt >= GREETING_ATTEMPTS) throw error;
        this.socket.destroy();
      }
    }
  }

  private async open(): Promise<net.Socket> {
    for (;;) {
      try {
        return await new Promise<net.Socket>((resolve, reject) => {
          const socket = net.connect(this.socketPath);
          socket.once('connect', () => resolve(socket));
          socket.once('error', reject);
        });
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    }
  }

  async readLine(silenceLimitMs = SILENCE_LIMIT_MS): Promise<string> {
    for (;;) {
      const end = this.buffer.indexOf('\n');
      if (end >= 0) {
        const line = this.buffer.slice(0, end).replace(/\r$/, '');
        this.buffer = this.buffer.slice(end + 1);
        return line;
      }
      await this.moreData(silenceLimitMs);
    }
  }

  /** Waits for the next bytes; a program silent for the limit fails the run instead of holding it forever. */
  private moreData(silenceLimitMs = SILENCE_LIMIT_MS): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.child.spawnfile} sent nothing for ${silenceLimitMs / 1000} s: hung`)), silenceLimitMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async execute(command: string, args?: Record<string, unknown>): Promise<any> {
    this.socket.write(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + '\n');
    for (;;) {
      const message = JSON.parse(await this.readLine());
      if ('event' in message) {
        this.events.push(message);
        continue;
      }
      if (message.error) throw new Error(`${command}: ${message.error.desc}`);
      return message.return;
    }
  }

  /** Resolves with the first event named `name` (met before or after this call) that `matches`. */
  async waitForEvent(name: string, matches: (data: Record<string, unknown>) => boolean = () => true): Promise<Record<string, unknown>> {
    for (;;) {
      const index = this.events.findIndex((event) => event.event === name && matches(event.data ?? {}));
      if (index >= 0) return this.events.splice(index, 1)[0]!.data ?? {};
      const message = JSON.parse(await this.readLine());
      if ('event' in message) this.events.push(message);
    }
  }

  /** Forgets the events collected so far. */
  clearEvents(): void {
    this.events.length = 0;
  }

  /** Writes every line at once and waits for as many replies (events are not counted); an error reply throws. */
  async pipeline(lines: string[]): Promise<void> {
    this.socket.write(lines.map((line) => line + '\n').join(''));
    let replies = 0;
    while (replies < lines.length) {
      let start = 0;
      for (let end = this.buffer.indexOf('\n'); end >= 0 && replies < lines.length; end = this.buffer.indexOf('\n', start)) {
        if (this.buffer.startsWith('{"error"', start)) throw new Error(`pipelined command failed: ${this.buffer.slice(start, end)}`);
        if (!this.buffer.startsWith('{"event"', start) && !this.buffer.startsWith('{"timestamp"', start)) replies++;
        start = end + 1;
      }
      this.buffer = this.buffer.slice(start);
      if (replies < lines.length) await this.moreData();
    }
  }

  /** Another client of the same daemon (on its monitor socket, or on another one it serves), negotiated. */
  async connectAnother(socketPath = this.socketPath): Promise<BenchDaemon> {
    const other = new BenchDaemon(this.child, socketPath, this.dir);
    await other.connect();
    await other.execute('qmp_capabilities');
    return other;
  }

  /** Resident memory in bytes: the whole set, its anonymous part, and the proportional share (PSS). */
  memory(): { rss: number; anon: number; pss: number } {
    const status = fs.readFileSync(`/proc/${this.child.pid}/status`, 'utf8');
    const rollup = fs.readFileSync(`/proc/${this.child.pid}/smaps_rollup`, 'utf8');
    const kib = (text: string, field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(text)![1]) * 1024;
    return { rss: kib(status, 'VmRSS'), anon: kib(status, 'RssAnon'), pss: kib(rollup, 'Pss') };
  }

  rssBytes(): number {
    return this.memory().rss;
  }

  /** Closes this client's connection only (another client keeps the daemon). */
  disconnect(): void {
    this.socket.destroy();
  }

  async stop(): Promise<void> {
    try {
      // Negotiating again is harmless after negotiation and required before it.
      this.socket.write('{"execute": "qmp_capabilities"}\n{"execute": "quit"}\n');
    } catch {
      // already gone
    }
    await new Promise((resolve) => {
      if (this.child.exitCode !== null) return resolve(null);
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
      this.child.once('exit', () => {
        clearTimeout(timer);
        resolve(null);
      });
    });
    this.socket.destroy();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
