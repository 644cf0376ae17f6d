import type { BlockdevSpec, CommandLine, DeviceSpec, DriveSpec, MachineSpec, MonitorSpec, ObjectSpec } from '../cli/index.ts';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** How command-line monitors/blockdevs/drives combine with the configured ones (see config/schema.json). */
export type CommandLineMerge = 'append' | 'replace';

/** Everything the daemon needs to start; config/schema.json documents each key. */
export interface DaemonConfig {
  commandLine: CommandLineMerge;
  monitors: MonitorSpec[];
  /** Permission bits of the monitor sockets, e.g. 0o600. */
  socketMode: number;
  websocket?: { host: string; port: number; allowedOrigins: string[]; tokenFile?: string; maxFrameBytes?: number };
  /** Serve the web view on the WebSocket listener (loopback only). */
  web: boolean;
  log: { level: LogLevel; destination: 'stderr' | string };
  version: { qemu: { major: number; minor: number; micro: number }; package: string };
  blockdevs: BlockdevSpec[];
  drives: DriveSpec[];
  /** From a QEMU launch line only: the machine, its -device list and the qtest connection. */
  machine?: MachineSpec;
  devices: DeviceSpec[];
  /** From a QEMU launch line only: its -object options, created before the block nodes. */
  objects: ObjectSpec[];
  qtest?: CommandLine['qtest'];
  qtestLog?: string;
  limits?: { maxPendingReplyBytes?: number; maxPendingInputBytes?: number; maxUnreadOutputBytes?: number };
  /** From -S and -name. */
  startPaused?: boolean;
  name?: string;
}

/** The JSON file's shape, after schema validation (config/schema.json). */
export interface ConfigFile {
  commandLine?: CommandLineMerge;
  monitors?: Array<{ id?: string; path: string; pretty?: boolean; concurrentClients?: boolean }>;
  socketMode?: number | string;
  websocket?: { host?: string; port: number; allowedOrigins?: string[]; tokenFile?: string; maxFrameBytes?: number };
  web?: boolean;
  log?: { level?: LogLevel; destination?: string };
  version?: { qemu?: { major: number; minor: number; micro: number }; package?: string };
  blockdevs?: Array<Record<string, unknown> | string>;
  drives?: Array<Record<string, string> | string>;
  limits?: DaemonConfig['limits'];
}

/** A configuration file that cannot be used; the message names the file and the key. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}
