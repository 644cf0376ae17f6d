/** What the command line asks for; main.ts merges it into the daemon configuration. */
export interface CommandLine {
  /** --config FILE */
  configFile?: string;
  /** --help / -h, --version / -V, -device help, -drive format=help: print and exit 0. */
  action?: 'help' | 'version' | 'device-help' | 'format-help';
  /** From -qmp / -qmp-pretty and from --chardev + --monitor (or -mon) pairs, in command-line order. */
  monitors: MonitorSpec[];
  /** --web: serve the web view. */
  web: boolean;
  /** --blockdev / -blockdev, in order. */
  blockdevs: BlockdevSpec[];
  /** -drive, in order. */
  drives: DriveSpec[];
  /** -object, in order. */
  objects: ObjectSpec[];
  /** -S: start in run state prelaunch until `cont`. */
  startPaused?: boolean;
  /** -name NAME, reported by query-name. */
  name?: string;
  /** -machine / -M and -accel; absent: qemu-storage-daemon style, no machine. */
  machine?: MachineSpec;
  /** --concurrent-clients: command-line monitors serve all their clients at once. */
  concurrentClients?: boolean;
  /** -device, in order. */
  devices: DeviceSpec[];
  /** -qtest: a qtest text-protocol connection. */
  qtest?: { endpoint: MonitorEndpoint; option: string };
  /** -qtest-log FILE|none; without it the qtest exchange is logged on stderr, as QEMU does. */
  qtestLog?: string;
  /** --log-level / --log-file: logs are written only when asked for on a QEMU launch line. */
  log?: { level?: string; destination?: string };
}

/** -machine TYPE[,accel=A][,...] and -accel A; the machine room checks the type and properties. */
export interface MachineSpec {
  type?: string;
  /** The accelerator in use: the first -accel, or the first of "-machine accel=A[:B]". */
  accel?: string;
  /** "-machine accel=" as written, until the whole line is read. */
  machineAccel?: string;
  properties: Record<string, string>;
  option?: string;
  /** -nodefaults: the machine creates no default drives. */
  noDefaults?: boolean;
  /** -vga none, -serial none|null: they decide whether a VGA device and a serial port come before the drives' devices. */
  vgaAndSerial?: { vga?: 'none'; serial?: 'none' | 'null' };
}

/** One -device DRIVER,... as flat QemuOpts (`driver` is the implied first key). */
export interface DeviceSpec {
  options: Record<string, string>;
  option: string;
}

/**
 * Where a QMP monitor's bytes come from:
 * - listen: a Unix socket qblockd binds (server=on,wait=off);
 * - inherited: a socket the parent passed as fd=N: listening with server=on, else connected
 *   (QEMU's Python harness passes one end of a socketpair);
 * - connect: qblockd connects out to a Unix socket someone else listens on (server=off).
 */
export type MonitorEndpoint =
  | { kind: 'listen'; path: string }
  | { kind: 'inherited'; fd: number; listening: boolean }
  | { kind: 'connect'; path: string };

/** A QMP monitor. A listening one serves one client at a time, as QEMU does, unless concurrentClients. */
export interface MonitorSpec {
  id?: string;
  endpoint: MonitorEndpoint;
  pretty: boolean;
  concurrentClients: boolean;
  /** The option that defined the socket, as written, for start-up errors. */
  option?: string;
}

/**
 * One block node to open at start. `value` is BlockdevOptions: typed JSON for
 * the JSON syntax, a tree of strings (objects, arrays, string leaves) for keyval.
 * `option` is the option as written (e.g. "-blockdev driver=null-co,..."), so a
 * later error can be reported QEMU-style as "qblockd: <option>: <reason>".
 */
export type BlockdevSpec =
  | { syntax: 'json'; value: Record<string, unknown>; option?: string }
  | { syntax: 'keyval'; value: Record<string, unknown>; option?: string };

/**
 * A -object: JSON (checked as QMP input), or flat QemuOpts with `qom-type` implied
 * (checked by QEMU's opts visitor). `option` is the option as written.
 */
export interface ObjectSpec {
  syntax: 'json' | 'opts';
  value: Record<string, unknown>;
  option: string;
}

/** A -drive, as flat QemuOpts (id, if, file, format, node-name, read-only/readonly, ...). */
export interface DriveSpec {
  options: Record<string, string>;
  option?: string;
}
