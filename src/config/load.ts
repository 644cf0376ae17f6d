import fs from 'node:fs';
import { hostErrorText } from '../errno.ts';
import { packageVersion, parseKeyval, parseQemuOpts, type BlockdevSpec, type DriveSpec, type MonitorSpec } from '../cli/index.ts';
import builtInDefaults from '../../config/default.json' with { type: 'json' };
import { ConfigError, type ConfigFile, type DaemonConfig } from './types.ts';
import { validateConfigFile } from './validate.ts';

const DEFAULT_WEBSOCKET_HOST = '127.0.0.1';

/**
 * The daemon configuration: config/default.json (embedded at build time), overlaid key by
 * key with the file at `path` when one is given (validated against
 * config/schema.json). Throws ConfigError naming the file and the bad key.
 */
export function loadConfig(path: string | undefined): DaemonConfig {
  const defaults = builtInDefaults as ConfigFile;
  if (path === undefined) return resolve(defaults, 'built-in configuration');
  const file = readJson(path);
  const problem = validateConfigFile(file);
  if (problem) throw new ConfigError(`config ${path}: ${problem}`);
  return resolve(overlay(defaults, file as ConfigFile), `config ${path}`);
}

/** Top-level keys of `file` replace the defaults', except log and version, merged one level down. */
function overlay(defaults: ConfigFile, file: ConfigFile): ConfigFile {
  return {
    ...defaults,
    ...file,
    commandLine: file.commandLine ?? 'append',
    log: { ...defaults.log, ...file.log },
    version: { ...defaults.version, ...file.version },
  };
}

function resolve(file: ConfigFile, source: string): DaemonConfig {
  const config: DaemonConfig = {
    commandLine: file.commandLine ?? 'append',
    monitors: (file.monitors ?? []).map(toMonitor),
    socketMode: toMode(file.socketMode ?? 0o600),
    web: file.web ?? false,
    log: { level: file.log?.level ?? 'info', destination: file.log?.destination ?? 'stderr' },
    version: {
      qemu: { ...(file.version?.qemu ?? { major: 7, minor: 2, micro: 22 }) },
      package: file.version?.package ?? `qblockd ${packageVersion()}`,
    },
    blockdevs: (file.blockdevs ?? []).map((entry, i) => withKey(source, `blockdevs[${i}]`, () => toBlockdev(entry))),
    drives: (file.drives ?? []).map((entry, i) => withKey(source, `drives[${i}]`, () => toDrive(entry))),
    devices: [],
    objects: [],
  };
  if (file.websocket) {
    config.websocket = {
      host: file.websocket.host ?? DEFAULT_WEBSOCKET_HOST,
      port: file.websocket.port,
      allowedOrigins: [...(file.websocket.allowedOrigins ?? [])],
    };
    if (file.websocket.tokenFile !== undefined) config.websocket.tokenFile = file.websocket.tokenFile;
    if (file.websocket.maxFrameBytes !== undefined) config.websocket.maxFrameBytes = file.websocket.maxFrameBytes;
  }
  if (file.limits) config.limits = { ...file.limits };
  return config;
}

function toMonitor(entry: NonNullable<ConfigFile['monitors']>[number]): MonitorSpec {
  const monitor: MonitorSpec = {
    endpoint: { kind: 'listen', path: entry.path },
    pretty: entry.pretty ?? false,
    concurrentClients: entry.concurrentClients ?? false,
  };
  if (entry.id !== undefined) monitor.id = entry.id;
  return monitor;
}

/** 384, "0600", "600" and "0o600" are all owner read/write. */
function toMode(mode: number | string): number {
  return typeof mode === 'number' ? mode : parseInt(mode.replace(/^0o/, ''), 8);
}

function toBlockdev(entry: Record<string, unknown> | string): BlockdevSpec {
  if (typeof entry === 'string') return { syntax: 'keyval', value: parseKeyval(entry, 'driver') };
  return { syntax: 'json', value: structuredClone(entry) };
}

function toDrive(entry: Record<string, string> | string): DriveSpec {
  return { options: typeof entry === 'string' ? parseQemuOpts(entry) : { ...entry } };
}

/** Runs a conversion, prefixing its error with the file and the key it came from. */
function withKey<T>(source: string, key: string, convert: () => T): T {
  try {
    return convert();
  } catch (error) {
    throw new ConfigError(`${source}: key '${key}': ${(error as Error).message}`);
  }
}

function readJson(path: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`config ${path}: ${hostErrorText(error)}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`config ${path}: invalid JSON: ${(error as Error).message}`);
  }
}
