import fs from 'node:fs';
import type net from 'node:net';
import { ExportManager } from './block/exports.ts';
import { NbdServer } from './nbd/server.ts';
import { JobList } from './block/jobs/job-list.ts';
import { RunState } from './block/run-state.ts';
import { BlockGraph } from './block/graph.ts';
import { driveSizesAsIntegers, driveToBlockdev, isWritethroughDrive } from './block/drive-options.ts';
import { allCommands, type DaemonServices } from './commands/index.ts';
import { graphView } from './commands/graph-view.ts';
import { SessionWatchers } from './commands/session-watchers.ts';
import type { WatchedState } from './commands/change-watch.ts';
import type { DaemonConfig } from './config/index.ts';
import type { Logger } from './log.ts';
import { Dispatcher } from './qmp/dispatcher.ts';
import { QmpSession, type SessionLimits, type SessionTransport } from './qmp/session.ts';
import { loadSchema, type Schema } from './schema/index.ts';
import type { XQblockdTransport } from './schema/generated/qapi-types.ts';
import type { MonitorSpec } from './cli/index.ts';
import { connectUnix } from './transport/client-socket.ts';
import { serveInheritedSocket } from './transport/inherited-socket.ts';
import type { MonitorOptions, SessionHost } from './transport/session-host.ts';
import { listenUnix } from './transport/unix-socket.ts';
import { Machine } from './machine/machine.ts';
import { MemoryTrim } from './memory-trim.ts';
import { startQtest } from './machine/qtest-connection.ts';
import type { WebSocketListener } from './transport/websocket.ts';

/** Where --web listens when no WebSocket listener is configured. */
const WEB_VIEW_LISTENER = { host: '127.0.0.1', port: 0, allowedOrigins: [] };
const DEFAULT_LIMITS: SessionLimits = { maxPendingReplyBytes: 8 << 20, maxPendingInputBytes: 1 << 20, maxUnreadOutputBytes: 64 << 20 };
/** Large enough for a request at QEMU's 64 MiB token limit in one frame. */
const DEFAULT_MAX_FRAME_BYTES = (64 << 20) + (64 << 10);

/** The daemon's own standard output and error, as a QEMU process would print on them. */
export interface HostOutput {
  stdout(text: string): void;
  stderr(text: string): void;
}

/**
 * The running daemon: one block graph, one dispatcher, any number of QMP
 * sessions on any number of monitors. Transports feed sessions; sessions
 * dispatch through the schema to the command handlers; handlers drive the graph.
 */
export class Daemon {
  readonly graph = new BlockGraph();
  readonly exports: ExportManager;
  readonly nbd: NbdServer;
  readonly jobs = new JobList((name, data) => this.emitEvent(name, data));
  private readonly sessions = new Set<QmpSession>();
  private readonly servers: net.Server[] = [];
  private readonly socketPaths: string[] = [];
  private webSocketListener: WebSocketListener | null = null;
  /** Where clients find the WebSocket token, once the listener is up. */
  webSocketTokenFile: string | null = null;
  webSocketUrl: string | null = null;
  /** The web view's address, token included, when --web / config `web` is on. */
  webUrl: string | null = null;
  private readonly dispatcher: Dispatcher;
  private readonly schema: Schema;
  private readonly watchers: SessionWatchers;
  private shuttingDown = false;
  private blockLayerClosed = false;
  private qtest: { close(): void } | undefined;
  readonly machine: Machine;
  private readonly memoryTrim = new MemoryTrim();

  constructor(
    private readonly config: DaemonConfig,
    private readonly log: Logger,
    /** Where what QEMU prints goes: HMP qemu-io's reports on stdout (not into the reply), warnings on stderr. */
    print: HostOutput = { stdout: (text) => void process.stdout.write(text), stderr: (text) => void process.stderr.write(text) },
  ) {
    this.schema = loadSchema();
    this.machine = new Machine(this.graph, config.machine);
    this.graph.eventSink = (name, data) => this.emitEvent(name, data);
    this.graph.warn = (line) => print.stderr(`${line}\n`);
    this.graph.readOptions = (options) => this.schema.validateType('BlockdevOptions', options, 'qmp');
    this.graph.backendDetached = (node) => {
      this.jobs.drain(node);
      this.jobs.drain(node);
    };
    this.exports = new ExportManager(
      this.graph,
      (id) => this.emitEvent('BLOCK_EXPORT_DELETED', { id }),
      () => this.watchers.poke(),
    );
    this.nbd = new NbdServer(this.exports, () => this.memoryTrim.noteActivity());
    this.watchers = new SessionWatchers(
      () => this.watchedState(),
      (name, data) => makeEvent(name, data),
      () => this.jobs.anyRunning(),
    );
    const services: DaemonServices = {
      graph: this.graph,
      machine: this.machine,
      exports: this.exports,
      nbd: this.nbd,
      jobs: this.jobs,
      runState: new RunState(config.startPaused ? 'prelaunch' : 'running', config.name, (event) => this.emitEvent(event)),
      schema: this.schema,
      version: config.version,
      emitEvent: (name, data) => this.emitEvent(name, data),
      watchers: this.watchers,
      printOutput: print.stdout,
      requestShutdown: (reason) => {
        this.closeBlockLayer();
        setImmediate(() => void this.shutdown(reason));
      },
    };
    this.dispatcher = new Dispatcher(this.schema, allCommands(services), (name, ms, error) => {
      this.watchers.poke();
      this.memoryTrim.noteActivity();
      if (error) this.log.debug({ command: name, ms, error: error.message }, 'command failed');
      else this.log.debug({ command: name, ms }, 'command');
    }, () => this.jobs.anyRunning());
  }

  /** Opens the configured nodes, then starts listening. Throws with a one-line reason. */
  async start(): Promise<void> {
    const websocket = this.config.websocket ?? (this.config.web ? WEB_VIEW_LISTENER : undefined);
    if (websocket && this.config.web) {
      // Loaded only when the web view is on, like the WebSocket modules below.
      const { isLoopback } = await import('./web/page.ts');
      if (!isLoopback(websocket.host)) throw new Error(`the web view is served on loopback addresses only, not on websocket host ${websocket.host}`);
    }
    // QEMU checks every -object as it reads the command line, and creates them before the block nodes.
    const objects = this.config.objects.map((spec) => withOption(spec.option, () => this.schema.validateType('ObjectOptions', spec.value, spec.syntax === 'json' ? 'qmp' : 'opts')));
    for (const options of objects) this.graph.objects.add(options);
    for (const spec of this.config.blockdevs) {
      withOption(spec.option, () => this.graph.addBlockdev(this.schema.validateType('BlockdevOptions', spec.value, spec.syntax === 'json' ? 'qmp' : 'keyval')));
    }
    for (const drive of this.config.drives) {
      withOption(drive.option, () => {
        const name = this.machine.placeDrive(drive.options, drive.option);
        const blockdev = driveToBlockdev(drive.options);
        if (!blockdev) return this.graph.addEmptyDrive(name);
        const options = this.schema.validateType('BlockdevOptions', driveSizesAsIntegers(blockdev), 'keyval');
        this.graph.addDrive(name, options, blockdev, isWritethroughDrive(drive.options));
      });
    }
    for (const device of this.config.devices) withOption(device.option, () => this.machine.addDevice(device.options));
    this.machine.attachDrives();
    const host = (kind: XQblockdTransport): SessionHost => ({
      openSession: (transport: SessionTransport, options: MonitorOptions) => this.openSession(transport, options, kind),
      closeSession: (session: QmpSession) => this.closeSession(session),
    });
    for (const monitor of this.config.monitors) {
      await withOption(monitor.option, () => this.openMonitor(monitor, host('unix')));
    }
    if (this.config.qtest) {
      const { endpoint, option } = this.config.qtest;
      const clockCommands = this.machine.accel === 'qtest';
      this.qtest = await withOption(option, () => startQtest({ endpoint, clockCommands, logFile: this.config.qtestLog }));
    }
    if (websocket) await this.startWebSocket(websocket, host('websocket'));
    this.memoryTrim.started();
  }

  /** Listens (serving the web view too when it is on), then writes the token where only this user can read it. */
  private async startWebSocket(options: NonNullable<DaemonConfig['websocket']>, host: SessionHost): Promise<void> {
    // Loaded only when configured: ws, node:http and node:crypto are most of what a start would otherwise compile.
    const { listenWebSocket } = await import('./transport/websocket.ts');
    const { defaultTokenPath, newWebSocketToken, writeTokenFile } = await import('./transport/websocket-token.ts');
    const serveHttp = this.config.web ? (await import('./web/page.ts')).webPage() : undefined;
    const token = newWebSocketToken();
    this.webSocketListener = await listenWebSocket(
      {
        host: options.host,
        port: options.port,
        allowedOrigins: options.allowedOrigins,
        token,
        maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
        ...(serveHttp ? { serveHttp } : {}),
      },
      host,
      this.log,
    );
    const { port } = this.webSocketListener;
    const tokenFile = options.tokenFile ?? defaultTokenPath(port);
    writeTokenFile(tokenFile, token);
    this.webSocketTokenFile = tokenFile;
    const authority = `${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
    this.webSocketUrl = `ws://${authority}`;
    if (this.config.web) this.webUrl = `http://${authority}/?token=${token}`;
    this.log.info({ host: options.host, port, tokenFile, web: this.config.web }, 'QMP WebSocket listening');
  }

  private async openMonitor({ endpoint, concurrentClients, pretty }: MonitorSpec, host: SessionHost): Promise<void> {
    switch (endpoint.kind) {
      case 'listen':
        this.servers.push(
          await listenUnix({ path: endpoint.path, mode: this.config.socketMode, concurrentClients, pretty }, host, this.log),
        );
        this.socketPaths.push(endpoint.path);
        this.log.info({ path: endpoint.path }, 'QMP monitor listening');
        return;
      case 'inherited': {
        const server = await serveInheritedSocket(endpoint.fd, endpoint.listening, concurrentClients, { pretty }, host, this.log);
        if (server) this.servers.push(server);
        this.log.info({ fd: endpoint.fd, listening: endpoint.listening }, 'QMP monitor on an inherited socket');
        return;
      }
      case 'connect':
        await connectUnix(endpoint.path, { pretty }, host, this.log);
        this.log.info({ path: endpoint.path }, 'QMP monitor connected');
        return;
    }
  }

  get monitorPaths(): readonly string[] {
    return this.socketPaths;
  }

  emitEvent(name: string, data?: Record<string, unknown>): void {
    const event = makeEvent(name, data);
    for (const session of this.sessions) session.emitEvent(event);
    this.watchers.poke();
    this.memoryTrim.noteActivity();
  }

  /**
   * QEMU's cleanup of the block layer: exports closed, then jobs cancelled, then nodes closed,
   * each with its events. `quit` runs it before its reply goes out, as QEMU sends that reply last.
   */
  private closeBlockLayer(): void {
    if (this.blockLayerClosed) return;
    this.blockLayerClosed = true;
    try {
      this.nbd.close();
      this.jobs.cancelAll();
      this.graph.closeAll();
    } catch (error) {
      this.log.error({ err: error }, 'failed to close block nodes cleanly');
    }
  }

  /** quit, SIGTERM, SIGINT: store what persists, say goodbye, exit. */
  async shutdown(reason: string): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.watchers.stop();
    this.memoryTrim.stop();
    this.log.info({ reason }, 'shutting down');
    this.closeBlockLayer();
    for (const server of this.servers) server.close();
    this.qtest?.close();
    this.webSocketListener?.close();
    for (const path of this.socketPaths) fs.rmSync(path, { force: true });
    if (this.webSocketTokenFile) fs.rmSync(this.webSocketTokenFile, { force: true });
    await Promise.race([
      Promise.all([...this.sessions].map((session) => session.closeGracefully())),
      new Promise((resolve) => setTimeout(resolve, 500)),
    ]);
    process.exit(0);
  }

  private get limits(): SessionLimits {
    return { ...DEFAULT_LIMITS, ...(this.config.limits ?? {}) };
  }

  /** What x-qblockd-watch clients are told about: the graph without the bits (jobs with their progress), and each bitmap's count. */
  private watchedState(): WatchedState {
    const nodes = graphView(this.graph);
    const bitmaps: WatchedState['bitmaps'] = new Map();
    for (const node of this.graph.allNodes()) {
      for (const bitmap of node.bitmaps) {
        if (bitmap.anonymous) continue;
        const { data } = bitmap;
        bitmaps.set(`${node.nodeName}/${bitmap.name}`, { node: node.nodeName, name: bitmap.name, count: data.dirtyBytes(), version: data.version });
      }
    }
    const withoutCounts = (key: string, value: unknown) => (key === 'count' ? undefined : value);
    const shape = [nodes, this.exports.details(), this.jobs.queryJobs(), this.watchers.clients()];
    return { shape: JSON.stringify(shape, withoutCounts), bitmaps };
  }

  /** A client on some transport: a monitor socket, a WebSocket, or the startup code cache's rehearsal. */
  openSession(transport: SessionTransport, options: MonitorOptions, kind: XQblockdTransport): QmpSession {
    const greeting = { QMP: { version: this.config.version, capabilities: ['oob'] } };
    const session = new QmpSession(transport, this.dispatcher, this.limits, greeting, options.pretty);
    this.sessions.add(session);
    this.watchers.opened(session, kind);
    this.log.debug({ session: session.id }, 'client connected');
    return session;
  }

  private closeSession(session: QmpSession): void {
    session.close();
    this.sessions.delete(session);
    this.watchers.closed(session);
    if (session.overflowed) this.log.warn({ session: session.id }, 'disconnected a client that left too much output unread');
    this.log.debug({ session: session.id }, 'client disconnected');
  }
}

/** A QMP event as QEMU sends it: name, wall-clock timestamp in microseconds, optional data. */
function makeEvent(name: string, data?: Record<string, unknown>): Record<string, unknown> {
  const now = Date.now() * 1000 + Math.floor((performance.now() * 1000) % 1000);
  const event: Record<string, unknown> = {
    event: name,
    timestamp: { seconds: Math.floor(now / 1e6), microseconds: now % 1e6 },
  };
  if (data) event.data = data;
  return event;
}

/** Runs a start-up step; its error names the option it came from, as QEMU's do ("-device ...: reason"). */
function withOption<T>(option: string | undefined, step: () => T): T {
  const prefix = (error: unknown): never => {
    throw option ? new Error(`${option}: ${(error as Error).message}`) : error;
  };
  try {
    const result = step();
    return result instanceof Promise ? (result.catch(prefix) as T) : result;
  } catch (error) {
    return prefix(error);
  }
}
