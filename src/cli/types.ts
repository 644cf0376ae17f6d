/** What the command line asks for; main.ts merges it into the daemon configuration. */
export interface CommandLine {
  /** --config FILE */
  configFile?: string;
  /** --help / -h, --version / -V: print and exit 0. */
  action?: 'help' | 'version';
  /** From -qmp / -qmp-pretty and from --chardev + --monitor (or -mon) pairs, in command-line order. */
  monitors: MonitorSpec[];
  /** --web: serve the web view. */
  web: boolean;
  /** --blockdev / -blockdev, in order. */
  blockdevs: BlockdevSpec[];
  /** -drive, in order. */
  drives: DriveSpec[];
  /** -S: start in run state prelaunch until `cont`. */
  startPaused?: boolean;
  /** -name NAME, reported by query-name. */
  name?: string;
}

/** A QMP monitor on a listening Unix socket (the only kind qblockd serves). */
export interface MonitorSpec {
  id?: string;
  path: string;
  server: true;
  wait: false;
  mode: 'control';
  pretty: boolean;
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
