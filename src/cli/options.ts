import { OptionSyntaxError } from './errors.ts';
import { parseJsonArgument } from './json.ts';
import { parseKeyval } from './keyval.ts';
import type { MonitorBuilder } from './monitors.ts';
import { checkIdentifier, parseQemuOpts } from './qemu-opts.ts';
import type { BlockdevSpec, CommandLine, DriveSpec } from './types.ts';

/** What an option handler may touch while the command line is read. */
export interface ParseState {
  commandLine: CommandLine;
  monitors: MonitorBuilder;
  driveIds: Set<string>;
}

/** How one occurrence was written: "-blockdev ARG" or "--blockdev=ARG", for error messages and specs. */
export interface Occurrence {
  argument: string;
  written: string;
}

export interface OptionRule {
  /** Names without dashes; "-x", "--x" and (with an argument) "--x=ARG" all work. */
  names: readonly string[];
  takesArgument: boolean;
  /** One line for --help: how the argument looks, and what the option does. */
  usage: string;
  help: string;
  apply(state: ParseState, occurrence: Occurrence): void;
}

/** Options QEMU has and qblockd refuses plainly, instead of calling them invalid. */
export const UNSUPPORTED_QEMU_OPTIONS: ReadonlySet<string> = new Set([
  'device', 'object', 'netdev', 'nic', 'm', 'smp', 'cpu', 'enable-kvm', 'accel', 'daemonize', 'pidfile',
  'chroot', 'runas', 'trace', 'D', 'd', 'nbd-server', 'export', 'serial', 'kernel', 'boot', 'hda', 'cdrom',
  'vnc', 'incoming', 'vga', 'usb', 'global', 'readconfig', 'sandbox', 'msg', 'rtc', 'icount',
]);

const DISPLAY_TYPES_NOT_SUPPORTED = new Set(['gtk', 'sdl', 'vnc', 'curses', 'egl-headless', 'spice-app', 'dbus', 'cocoa']);

const noOperation = (): void => {};

export const OPTION_RULES: readonly OptionRule[] = [
  {
    names: ['h', 'help'],
    takesArgument: false,
    usage: '-h, --help',
    help: 'print this help and exit',
    apply: ({ commandLine }) => void (commandLine.action = 'help'),
  },
  {
    names: ['V', 'version'],
    takesArgument: false,
    usage: '-V, --version',
    help: 'print the version and exit',
    apply: ({ commandLine }) => void (commandLine.action = 'version'),
  },
  {
    names: ['config'],
    takesArgument: true,
    usage: '--config FILE',
    help: 'read the daemon configuration from FILE (JSON, see config/schema.json)',
    apply: ({ commandLine }, { argument }) => void (commandLine.configFile = argument),
  },
  {
    names: ['web'],
    takesArgument: false,
    usage: '--web',
    help: 'serve the live web view on the WebSocket listener (127.0.0.1, a free port unless configured)',
    apply: ({ commandLine }) => void (commandLine.web = true),
  },
  {
    names: ['blockdev'],
    takesArgument: true,
    usage: '--blockdev OPTIONS',
    help: "open a block node: keyval (driver=null-co,node-name=n0) or JSON ('{\"driver\": ...}')",
    apply: ({ commandLine }, occurrence) => void commandLine.blockdevs.push(parseBlockdev(occurrence)),
  },
  {
    names: ['drive'],
    takesArgument: true,
    usage: '-drive if=none,id=ID,...',
    help: 'open a drive the legacy way (if=none only)',
    apply: (state, occurrence) => void state.commandLine.drives.push(parseDrive(state, occurrence)),
  },
  {
    names: ['qmp'],
    takesArgument: true,
    usage: '-qmp unix:PATH,server=on,wait=off',
    help: 'serve QMP on a Unix socket',
    apply: ({ monitors }, { argument }) => monitors.addQmp(argument, false),
  },
  {
    names: ['qmp-pretty'],
    takesArgument: true,
    usage: '-qmp-pretty unix:PATH,server=on,wait=off',
    help: 'the same, with pretty-printed replies',
    apply: ({ monitors }, { argument }) => monitors.addQmp(argument, true),
  },
  {
    names: ['chardev'],
    takesArgument: true,
    usage: '--chardev socket,id=ID,path=PATH,server=on,wait=off',
    help: 'define a listening Unix socket for --monitor',
    apply: ({ monitors }, { argument }) => monitors.addChardev(argument),
  },
  {
    names: ['monitor'],
    takesArgument: true,
    usage: '--monitor [chardev=]ID[,mode=control][,pretty=on|off]',
    help: 'serve QMP on a chardev (qemu-storage-daemon syntax)',
    apply: ({ monitors }, { argument, written }) => monitors.addMonitor(argument, written),
  },
  {
    names: ['mon'],
    takesArgument: true,
    usage: '-mon [chardev=]ID,mode=control[,pretty=on|off]',
    help: 'serve QMP on a chardev (qemu-system syntax)',
    apply: ({ monitors }, { argument, written }) => monitors.addMon(argument, written),
  },
  {
    names: ['M', 'machine'],
    takesArgument: true,
    usage: '-M, -machine none',
    help: 'accepted for compatibility: the only machine is none',
    apply: (_state, { argument }) => checkMachine(argument),
  },
  {
    names: ['display'],
    takesArgument: true,
    usage: '-display none',
    help: 'accepted for compatibility: there is no display',
    apply: (_state, { argument }) => checkDisplay(argument),
  },
  {
    names: ['nodefaults'],
    takesArgument: false,
    usage: '-nodefaults',
    help: 'accepted for compatibility: qblockd creates no default devices',
    apply: noOperation,
  },
  {
    names: ['nographic'],
    takesArgument: false,
    usage: '-nographic',
    help: 'accepted for compatibility: there is no display',
    apply: noOperation,
  },
  {
    names: ['S'],
    takesArgument: false,
    usage: '-S',
    help: "start in run state 'prelaunch' (query-status) until 'cont'",
    apply: ({ commandLine }) => void (commandLine.startPaused = true),
  },
  {
    names: ['name'],
    takesArgument: true,
    usage: '-name NAME',
    help: 'the name query-name reports (guest=NAME and further keys are accepted)',
    apply: ({ commandLine }, { argument }) => void (commandLine.name = parseQemuOpts(argument, 'guest').guest),
  },
];

/** A JSON argument starts with '{' exactly, as in QEMU; anything else is keyval with implied key "driver". */
function parseBlockdev({ argument, written }: Occurrence): BlockdevSpec {
  if (argument.startsWith('{')) {
    return { syntax: 'json', value: parseJsonArgument(argument) as Record<string, unknown>, option: written };
  }
  return { syntax: 'keyval', value: parseKeyval(argument, 'driver'), option: written };
}

function parseDrive(state: ParseState, { argument, written }: Occurrence): DriveSpec {
  const options = parseQemuOpts(argument);
  if (options.id !== undefined) {
    checkIdentifier(options.id);
    if (state.driveIds.has(options.id)) throw new OptionSyntaxError(`Duplicate ID '${options.id}' for drive`);
    state.driveIds.add(options.id);
  }
  return { options, option: written };
}

function checkMachine(argument: string): void {
  const { type } = parseQemuOpts(argument, 'type');
  if (type !== 'none') throw new OptionSyntaxError('unsupported machine type (qblockd emulates -M none only)');
}

function checkDisplay(argument: string): void {
  const { type, ...rest } = parseKeyval(argument, 'type');
  if (type === undefined) throw new OptionSyntaxError("Parameter 'type' is missing");
  if (type !== 'none') {
    if (typeof type === 'string' && DISPLAY_TYPES_NOT_SUPPORTED.has(type)) {
      throw new OptionSyntaxError(`display '${type}' is not supported by qblockd (only none)`);
    }
    throw new OptionSyntaxError(`Parameter 'type' does not accept value '${String(type)}'`);
  }
  const unexpected = Object.keys(rest)[0];
  if (unexpected !== undefined) throw new OptionSyntaxError(`Parameter '${unexpected}' is unexpected`);
}
