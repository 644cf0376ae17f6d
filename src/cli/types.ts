/** What the command line asks for; main.ts merges it into the daemon configuration. */
export interface CommandLine {
  /** --config FILE */
  configFile?: string;
  /** --help / -h, --version / -V: print and exit 0. */
  action?: 'help' | 'version';
  /** From -qmp / -qmp-pretty and from --chardev + --monitor (or -mon) pairs, in command-line order. */
  monitors: MonitorSpec[];
  /** --blockdev / -blockdev, in order. */
  blockdevs: BlockdevSpec[];
  /** -drive, in order. */
  drives: DriveSpec[];
}

/**
 * Where a QMP monitor's bytes come from:
 * - listen: a Unix socket qblockd binds (server=on,wait=off);
 * - inherited: a socket the parent passed as fd=N, either listening or already connected
 *   (QEMU's Python harness passes one end of a socketpair);
 * - connect: qblockd connects out to a Unix socket someone else listens on (server=off).
 */
export type MonitorEndpoint =
  | { kind: 'listen'; path: string }
  | { kind: 'inherited'; fd: number }
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

/** A -drive, as flat QemuOpts (id, if, file, format, node-name, read-only/readonly, ...). */
export interface DriveSpec {
  options: Record<string, string>;
  option?: string;
}
