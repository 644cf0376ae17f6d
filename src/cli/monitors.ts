import { OptionSyntaxError } from './errors.ts';
import { parseKeyval } from './keyval.ts';
import { checkIdentifier, checkKnownKeys, parseBoolean, parseQemuOpts } from './qemu-opts.ts';
import fs from 'node:fs';
import type { MonitorEndpoint, MonitorSpec } from './types.ts';

/**
 * QMP monitors from -qmp/-qmp-pretty, --chardev and --monitor/-mon. The chardevs
 * qblockd serves are Unix sockets: listening without waiting for a client
 * ("socket,id=ID,path=PATH,server=on,wait=off"), connecting out ("path=PATH",
 * server off), or inherited from the parent ("fd=N", listening or connected).
 */

/** Backends QEMU knows but qblockd does not serve: a clear refusal, not "not a valid char driver". */
const OTHER_CHARDEV_BACKENDS = new Set([
  'null', 'file', 'pipe', 'pty', 'stdio', 'serial', 'tty', 'parallel', 'parport', 'udp', 'ringbuf', 'memory',
  'mux', 'msmouse', 'wctablet', 'braille', 'testdev', 'vc', 'spicevmc', 'spiceport', 'dbus', 'qemu-vdagent',
]);
/** Socket chardev keys QEMU accepts and qblockd cannot honour (TCP, telnet, TLS...). */
const UNSUPPORTED_SOCKET_KEYS = new Set([
  'host', 'port', 'to', 'ipv4', 'ipv6', 'nodelay', 'telnet', 'tn3270', 'websocket', 'reconnect', 'delay',
  'tls-creds', 'tls-authz', 'abstract', 'tight', 'logfile', 'logappend', 'mux', 'signal',
]);
const SOCKET_KEYS = new Set(['backend', 'id', 'path', 'fd', 'server', 'wait']);
/** QEMU accepts at most one of these addresses per socket chardev. */
const SOCKET_ADDRESS_KEYS = ['path', 'fd', 'host'];
/** Prefixes of -qmp's legacy chardev spellings other than "unix:". */
const OTHER_LEGACY_PREFIXES = ['tcp:', 'telnet:', 'tn3270:', 'websocket:', 'udp:', 'file:', 'pipe:', 'mon:', 'vc', 'stdio', 'null', 'pty', '/dev/', 'COM', 'msmouse', 'braille'];
const MON_KEYS = new Set(['id', 'mode', 'chardev', 'pretty']);
const MONITOR_MODES = new Set(['control', 'readline']);

interface Chardev {
  endpoint: MonitorEndpoint;
  option: string;
}

/** A monitor waiting for its chardev, which may be defined later on the command line. */
interface MonitorReference {
  id?: string;
  chardev: string;
  pretty: boolean;
  option: string;
}

export class MonitorBuilder {
  private readonly chardevs = new Map<string, Chardev>();
  private readonly entries: Array<MonitorSpec | MonitorReference> = [];

  /** `-qmp unix:PATH,server=on,wait=off` (also the legacy "server,nowait"). */
  addQmp(spec: string, pretty: boolean, option: string): void {
    const { endpoint, id } = legacySocketEndpoint(spec);
    this.entries.push(monitor({ endpoint, option }, pretty, id));
  }

  /** `--chardev socket,id=ID,path=PATH,server=on,wait=off` */
  addChardev(spec: string, option: string): void {
    const options = parseQemuOpts(spec, 'backend');
    const backend = options.backend;
    const id = options.id;
    if (backend === undefined) {
      if (id === undefined) throw new OptionSyntaxError('chardev: no id specified');
      throw new OptionSyntaxError(`chardev: "${id}" missing backend`);
    }
    if (backend !== 'socket') {
      if (OTHER_CHARDEV_BACKENDS.has(backend)) {
        throw new OptionSyntaxError(`chardev backend '${backend}' is not supported by qblockd (only 'socket' with 'path')`);
      }
      throw new OptionSyntaxError(`'${backend}' is not a valid char driver name`);
    }
    if (id === undefined) throw new OptionSyntaxError('chardev: no id specified');
    checkIdentifier(id);
    if (this.chardevs.has(id)) throw new OptionSyntaxError(`Duplicate ID '${id}' for chardev`);
    this.chardevs.set(id, { endpoint: socketEndpoint(options), option });
  }

  /** qemu-storage-daemon's `--monitor [chardev=]ID[,mode=control][,pretty=on|off][,id=ID]` (keyval, QMP by default). */
  addMonitor(spec: string, option: string): void {
    const options = parseKeyval(spec, 'chardev');
    for (const [key, value] of Object.entries(options)) {
      if (typeof value !== 'string') throw new OptionSyntaxError(`Invalid parameter type for '${key}', expected: string`);
    }
    const flat = options as Record<string, string>;
    // As QEMU visits MonitorOptions: members first, unexpected keys after them.
    this.addReference(flat, 'control', option, () => {
      const unexpected = Object.keys(flat).find((key) => !MON_KEYS.has(key));
      if (unexpected !== undefined) throw new OptionSyntaxError(`Parameter '${unexpected}' is unexpected`);
    });
  }

  /** qemu-system's `-mon [chardev=]ID[,mode=control][,pretty=on|off]` (QemuOpts, HMP by default). */
  addMon(spec: string, option: string): void {
    const options = parseQemuOpts(spec, 'chardev');
    checkKnownKeys(options, MON_KEYS);
    this.addReference(options, 'readline', option, () => {});
  }

  /** Every monitor in command-line order; a chardev may be defined after the monitor naming it. */
  finish(): MonitorSpec[] {
    return this.entries.map((entry) => {
      if (!('chardev' in entry)) return entry;
      const chardev = this.chardevs.get(entry.chardev);
      if (!chardev) throw new MonitorReferenceError(entry.option, `chardev "${entry.chardev}" not found`);
      return monitor(chardev, entry.pretty, entry.id ?? entry.chardev);
    });
  }

  private addReference(options: Record<string, string>, defaultMode: string, option: string, checkUnexpected: () => void): void {
    const mode = options.mode ?? defaultMode;
    if (!MONITOR_MODES.has(mode)) throw new OptionSyntaxError(`Parameter 'mode' does not accept value '${mode}'`);
    const pretty = options.pretty === undefined ? false : parseBoolean('pretty', options.pretty);
    if (options.chardev === undefined) throw new OptionSyntaxError("Parameter 'chardev' is missing");
    checkUnexpected();
    if (mode !== 'control') throw new OptionSyntaxError('Only QMP is supported');
    this.entries.push({ id: options.id, chardev: options.chardev, pretty, option });
  }
}

/** A chardev in -qmp / -qtest's legacy spelling: "unix:PATH[,server=on,wait=off]" or "unix:path=PATH,...". */
export function legacySocketEndpoint(spec: string): { endpoint: MonitorEndpoint; id?: string } {
  if (!spec.startsWith('unix:')) {
    if (OTHER_LEGACY_PREFIXES.some((prefix) => spec.startsWith(prefix))) {
      throw new OptionSyntaxError('only unix:PATH,server=on,wait=off is supported by qblockd');
    }
    throw new OptionSyntaxError(`'${spec}' is not a valid char driver`);
  }
  const options = parseQemuOpts(spec.slice('unix:'.length), 'path');
  return { endpoint: socketEndpoint(options), id: options.id };
}

/** A monitor whose chardev never appeared; names the --monitor option, not the last one parsed. */
export class MonitorReferenceError extends Error {
  constructor(
    readonly option: string,
    reason: string,
  ) {
    super(reason);
  }
}

function socketEndpoint(options: Record<string, string>): MonitorEndpoint {
  for (const key of Object.keys(options)) {
    if (UNSUPPORTED_SOCKET_KEYS.has(key)) throw new OptionSyntaxError(`socket option '${key}' is not supported by qblockd`);
  }
  checkKnownKeys(options, SOCKET_KEYS);
  if (options.id !== undefined) checkIdentifier(options.id);
  if (SOCKET_ADDRESS_KEYS.filter((key) => options[key] !== undefined).length > 1) {
    throw new OptionSyntaxError("None or one of 'path', 'fd' or 'host' option required.");
  }
  const server = options.server === undefined ? false : parseBoolean('server', options.server);
  const wait = options.wait === undefined ? true : parseBoolean('wait', options.wait);
  if (server && wait) throw new OptionSyntaxError('wait=on is not supported: qblockd does not wait for a client (use wait=off)');
  if (options.path === undefined) return { kind: 'inherited', fd: inheritedSocket(options.fd ?? ''), listening: server };
  return server ? { kind: 'listen', path: options.path } : { kind: 'connect', path: options.path };
}

/** fd=N must name a socket this process inherited. */
function inheritedSocket(text: string): number {
  if (!/^[0-9]+$/.test(text)) throw new OptionSyntaxError(`Unable to parse FD number ${text}`);
  const fd = Number(text);
  let isSocket = false;
  try {
    isSocket = fs.fstatSync(fd).isSocket();
  } catch {
    // a closed descriptor is "not a socket" too
  }
  if (!isSocket) throw new OptionSyntaxError(`File descriptor '${fd}' is not a socket`);
  return fd;
}

function monitor(chardev: Chardev, pretty: boolean, id: string | undefined): MonitorSpec {
  const spec: MonitorSpec = { endpoint: chardev.endpoint, pretty, concurrentClients: false, option: chardev.option };
  if (id !== undefined) spec.id = id;
  return spec;
}
