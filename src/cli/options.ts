import { BareOptionError, CommandLineError, OptionSyntaxError } from './errors.ts';
import { JsonArgumentError, parseJsonArgument } from '../qmp/json-argument.ts';
import { parseKeyval } from './keyval.ts';
import { legacySocketEndpoint, type MonitorBuilder } from './monitors.ts';
import { checkIdentifier, parseQemuOpts } from './qemu-opts.ts';
import type { BlockdevSpec, CommandLine, DriveSpec, MachineSpec, ObjectSpec } from './types.ts';

/** What an option handler may touch while the command line is read. */
export interface ParseState {
  commandLine: CommandLine;
  monitors: MonitorBuilder;
  driveIds: Set<string>;
  /** Ids of the QemuOpts-form -object options: QemuOpts refuses a second one. */
  objectIds: Set<string>;
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
  /**
   * Only qemu-system-x86_64 has this option: a line using one is a system emulator's, whose
   * machine is pc unless -machine says otherwise (qemu-storage-daemon lines have none).
   */
  systemOnly?: true;
  apply(state: ParseState, occurrence: Occurrence): void;
}

/** Options QEMU has and qblockd refuses plainly, instead of calling them invalid. */
export const UNSUPPORTED_QEMU_OPTIONS: ReadonlySet<string> = new Set([
  'object', 'netdev', 'nic', 'm', 'smp', 'cpu', 'enable-kvm', 'daemonize', 'pidfile',
  'chroot', 'runas', 'trace', 'D', 'd', 'nbd-server', 'export', 'kernel', 'boot', 'hda',
  'vnc', 'incoming', 'usb', 'global', 'readconfig', 'sandbox', 'msg', 'rtc', 'icount', 'monitor', 'add-fd',
]);

const DISPLAY_TYPES_NOT_SUPPORTED = new Set(['gtk', 'sdl', 'vnc', 'curses', 'egl-headless', 'spice-app', 'dbus', 'cocoa']);

const noOperation = (): void => {};

/** qemu-system-x86_64's machine when -machine names none. */
const SYSTEM_DEFAULT_MACHINE = 'pc';

/** Accelerators a QEMU launch line may name; with no guest to run, they differ only in qtest's clock commands. */
const ACCELERATORS = new Set(['tcg', 'kvm', 'qtest']);
const OTHER_ACCELERATORS = new Set(['xen', 'hvf', 'whpx', 'nvmm', 'hax']);
/** -vga types QEMU knows; qblockd has no display, so only `none`. */
const VGA_TYPES = new Set(['std', 'cirrus', 'vmware', 'qxl', 'xenfb', 'virtio', 'tcx', 'cg3', 'none']);
/** -serial backends that attach nothing. */
const NULL_SERIALS = new Set(['none', 'null']);

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
    names: ['object'],
    takesArgument: true,
    usage: '-object TYPE,id=ID[,PROP=VALUE...] | JSON',
    help: "create an object before the block nodes, as object-add does (throttle-group): QemuOpts or JSON ('{\"qom-type\": ...}')",
    apply: (state, occurrence) => void state.commandLine.objects.push(parseObject(state, occurrence)),
  },
  {
    names: ['drive'],
    takesArgument: true,
    usage: '-drive [if=none|ide|virtio|floppy,][id=ID,][media=disk|cdrom,]file=PATH|driver=D[,format=F][,cache=,aio=,discard=,detect-zeroes=] | format=help',
    help: 'open a drive the legacy way; if=ide|virtio|floppy attaches it to a disk of the machine',
    apply: (state, occurrence) => void state.commandLine.drives.push(parseDrive(state, occurrence)),
  },
  {
    names: ['cdrom'],
    systemOnly: true,
    takesArgument: true,
    usage: '-cdrom FILE',
    help: "the machine's CD-ROM drive (IDE index 2) with FILE inserted",
    apply: ({ commandLine }, { argument, written }) =>
      void commandLine.drives.push({ options: { index: '2', media: 'cdrom', file: argument }, option: written }),
  },
  {
    names: ['qmp'],
    takesArgument: true,
    usage: '-qmp unix:PATH[,server=on,wait=off]',
    help: 'serve QMP on a Unix socket: listening (server=on), else connecting out to PATH',
    apply: ({ monitors }, { argument, written }) => monitors.addQmp(argument, false, written),
  },
  {
    names: ['qmp-pretty'],
    takesArgument: true,
    usage: '-qmp-pretty unix:PATH,server=on,wait=off',
    help: 'the same, with pretty-printed replies',
    apply: ({ monitors }, { argument, written }) => monitors.addQmp(argument, true, written),
  },
  {
    names: ['chardev'],
    takesArgument: true,
    usage: '--chardev socket,id=ID,path=PATH|fd=N[,server=on,wait=off]',
    help: 'a Unix socket for --monitor / -mon: listening (server=on), connecting out, or inherited as fd N',
    apply: ({ monitors }, { argument, written }) => monitors.addChardev(argument, written),
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
    systemOnly: true,
    takesArgument: true,
    usage: '-mon [chardev=]ID,mode=control[,pretty=on|off]',
    help: 'serve QMP on a chardev (qemu-system syntax)',
    apply: ({ monitors }, { argument, written }) => monitors.addMon(argument, written),
  },
  {
    names: ['M', 'machine'],
    takesArgument: true,
    usage: '-M, -machine none|pc|q35[,accel=tcg|kvm|qtest]',
    help: 'the machine whose disk controllers -device and if=ide|virtio drives attach to (no guest runs)',
    apply: ({ commandLine }, { argument, written }) => void (commandLine.machine = readMachine(commandLine, argument, written)),
  },
  {
    names: ['accel'],
    systemOnly: true,
    takesArgument: true,
    usage: '-accel tcg|kvm|qtest',
    help: 'accepted for compatibility; qtest enables the qtest clock commands',
    apply: ({ commandLine }, { argument }) => readAccel(commandLine, argument),
  },
  {
    names: ['device'],
    systemOnly: true,
    takesArgument: true,
    usage: '-device DRIVER,drive=NODE,id=ID | help',
    help: 'a guest disk (virtio-blk-pci, scsi-hd, ide-hd) or disk controller (virtio-scsi-pci, lsi53c895a); help lists them',
    apply: ({ commandLine }, { argument, written }) => {
      if (argument === 'help' || argument === '?') commandLine.action = 'device-help';
      else commandLine.devices.push({ options: parseQemuOpts(argument, 'driver'), option: written });
    },
  },
  {
    names: ['qtest'],
    systemOnly: true,
    takesArgument: true,
    usage: '-qtest unix:PATH',
    help: "connect to a qtest client and answer its clock commands (QEMU's qtest text protocol)",
    apply: ({ commandLine }, { argument, written }) => {
      commandLine.qtest = { endpoint: legacySocketEndpoint(argument).endpoint, option: written };
    },
  },
  {
    names: ['qtest-log'],
    takesArgument: true,
    usage: '-qtest-log FILE|none',
    help: 'where the qtest exchange is logged (default: stderr, as QEMU)',
    apply: ({ commandLine }, { argument }) => void (commandLine.qtestLog = argument),
  },
  {
    names: ['vga'],
    systemOnly: true,
    takesArgument: true,
    usage: '-vga none',
    help: 'there is no display; without it, the machine has a default VGA device (it shifts the numbers of its other devices)',
    apply: ({ commandLine }, { argument }) => {
      checkVga(argument);
      commandLine.machine = { properties: {}, ...commandLine.machine, vgaAndSerial: { ...commandLine.machine?.vgaAndSerial, vga: 'none' } };
    },
  },
  {
    names: ['serial'],
    systemOnly: true,
    takesArgument: true,
    usage: '-serial none|null',
    help: 'no guest writes to it; none leaves out the serial port, null adds one even with -nodefaults (it shifts the numbers of other devices)',
    apply: ({ commandLine }, { argument }) => {
      if (!NULL_SERIALS.has(argument)) throw new OptionSyntaxError('only -serial none or null is supported by qblockd');
      commandLine.machine = { properties: {}, ...commandLine.machine, vgaAndSerial: { ...commandLine.machine?.vgaAndSerial, serial: argument as 'none' | 'null' } };
    },
  },
  {
    names: ['concurrent-clients'],
    takesArgument: false,
    usage: '--concurrent-clients',
    help: 'serve every client of a command-line monitor at once (QEMU serves one at a time; the next waits)',
    apply: ({ commandLine }) => void (commandLine.concurrentClients = true),
  },
  {
    names: ['log-level'],
    takesArgument: true,
    usage: '--log-level fatal|error|warn|info|debug|trace|silent',
    help: "qblockd's own log level; on a QEMU launch line nothing is logged unless asked",
    apply: ({ commandLine }, { argument }) => void (commandLine.log = { ...commandLine.log, level: checkLogLevel(argument) }),
  },
  {
    names: ['log-file'],
    takesArgument: true,
    usage: '--log-file PATH|stderr',
    help: "where qblockd's own log goes (JSON lines)",
    apply: ({ commandLine }, { argument }) => void (commandLine.log = { ...commandLine.log, destination: argument }),
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
    systemOnly: true,
    usage: '-nodefaults',
    help: "no default drives: without it, pc and q35 have an empty CD-ROM drive, pc a floppy drive, both an SD card slot",
    apply: ({ commandLine }) => void (commandLine.machine = { properties: {}, ...commandLine.machine, noDefaults: true }),
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
  if (argument.startsWith('{')) return { syntax: 'json', value: parseJsonOption(argument), option: written };
  return { syntax: 'keyval', value: parseKeyval(argument, 'driver'), option: written };
}

function parseObject(state: ParseState, { argument, written }: Occurrence): ObjectSpec {
  if (argument.startsWith('{')) return { syntax: 'json', value: parseJsonOption(argument), option: written };
  const options = parseQemuOpts(argument, 'qom-type');
  if (options.id !== undefined) {
    try {
      checkIdentifier(options.id);
    } catch (error) {
      throw new OptionSyntaxError(`${(error as Error).message}\nIdentifiers consist of letters, digits, '-', '.', '_', starting with a letter.`);
    }
    if (state.objectIds.has(options.id)) throw new OptionSyntaxError(`Duplicate ID '${options.id}' for object`);
    state.objectIds.add(options.id);
  }
  if (options['qom-type'] === undefined) throw new OptionSyntaxError("Parameter 'qom-type' is missing");
  return { syntax: 'opts', value: options, option: written };
}

function parseDrive(state: ParseState, { argument, written }: Occurrence): DriveSpec {
  const options = parseQemuOpts(argument);
  if (options.format === 'help' || options.format === '?') state.commandLine.action = 'format-help';
  if (options.id !== undefined) {
    checkIdentifier(options.id);
    if (state.driveIds.has(options.id)) throw new OptionSyntaxError(`Duplicate ID '${options.id}' for drive`);
    state.driveIds.add(options.id);
  }
  return { options, option: written };
}

function readMachine(commandLine: CommandLine, argument: string, option: string): MachineSpec {
  const { type, accel, ...properties } = parseQemuOpts(argument, 'type');
  const machine: MachineSpec = { ...commandLine.machine, properties: { ...commandLine.machine?.properties, ...properties }, option };
  if (type !== undefined) machine.type = type;
  if (accel !== undefined) machine.machineAccel = accel;
  return machine;
}

/**
 * Several -accel options are fallbacks tried in order; qblockd can always run the first
 * one it accepts, so (as in QEMU) later ones are never looked at.
 */
function readAccel(commandLine: CommandLine, argument: string): void {
  const machine: MachineSpec = commandLine.machine ?? { properties: {} };
  commandLine.machine = machine;
  if (machine.accel !== undefined) return;
  const { accel = '' } = parseQemuOpts(argument, 'accel');
  const problem = acceleratorProblem(accel);
  if (problem) throw new OptionSyntaxError(problem);
  machine.accel = accel;
}

/**
 * After the whole line: the machine type a system-emulator line defaults to, and
 * "-machine accel=", which QEMU checks only once every option is read.
 */
export function finishMachine(commandLine: CommandLine, systemEmulatorLine: boolean): void {
  const machine = commandLine.machine ?? (systemEmulatorLine ? { properties: {} } : undefined);
  if (!machine) return;
  if (systemEmulatorLine) machine.type ??= SYSTEM_DEFAULT_MACHINE;
  const { machineAccel, ...resolved } = machine;
  if (machineAccel !== undefined) {
    if (machine.accel !== undefined) throw new CommandLineError('The -accel and "-machine accel=" options are incompatible');
    const problem = machineAccel.split(':').map(acceleratorProblem).find(Boolean);
    if (problem) throw new CommandLineError(problem);
    resolved.accel = machineAccel.split(':')[0]!;
  }
  commandLine.machine = resolved;
}

function acceleratorProblem(accel: string): string | undefined {
  if (ACCELERATORS.has(accel)) return undefined;
  if (OTHER_ACCELERATORS.has(accel)) return `accelerator ${accel} is not supported by qblockd`;
  return `invalid accelerator ${accel}`;
}

function checkVga(type: string): void {
  if (!VGA_TYPES.has(type)) throw new BareOptionError(`unknown vga type: ${type}`);
  if (type !== 'none') throw new OptionSyntaxError(`vga '${type}' is not supported by qblockd (only none)`);
}

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

function checkLogLevel(level: string): string {
  if (!LOG_LEVELS.has(level)) throw new OptionSyntaxError(`unknown log level '${level}'`);
  return level;
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

/** A JSON option argument (-blockdev, -object); QEMU's parser's texts on a syntax error. */
function parseJsonOption(argument: string): Record<string, unknown> {
  try {
    return parseJsonArgument(argument) as Record<string, unknown>;
  } catch (error) {
    throw error instanceof JsonArgumentError ? new OptionSyntaxError(error.message) : error;
  }
}
