import { QmpError } from '../qmp/errors.ts';
import type { BlockDeviceInfo, BlockInfo, StatusInfo, VersionInfo } from '../schema/generated/qapi-types.ts';
import { infoBlock } from './info-block.ts';
import { runQemuIoCommand, type QemuIoTarget } from './qemu-io.ts';
import { monitorSize } from './size.ts';
import { C_BLANK, C_BLANKS, trimC, trimStartC } from '../c-text.ts';

export type { QemuIoTarget } from './qemu-io.ts';
export { NO_MEDIUM_TARGET } from './qemu-io.ts';

export interface HmpContext {
  /** QEMU's standard output, where qemu-io prints its reports and its own errors. */
  print(text: string): void;
  /** Throws QmpError with QEMU's lookup message for unknown devices; `guestDevicesOnly` for qemu-io -d (guest devices by qdev id). */
  resolveQemuIoTarget(device: string, guestDevicesOnly: boolean): QemuIoTarget;
  /** query-block's and query-named-block-nodes' answers, for `info block`. */
  blockBackends(): BlockInfo[];
  namedNodes(): BlockDeviceInfo[];
  /** query-status's answer, for `info status`. */
  status(): StatusInfo;
  version: VersionInfo;
  /** block_resize DEVICE SIZE: QMP's block_resize with `device` only; throws QmpError. */
  resizeDevice(device: string, size: bigint): void;
}

interface HmpCommand {
  /** The lines `help` prints for it (QEMU 7.2's text); continuation lines start with tabs. */
  help: string[];
  /** Runs with the rest of the command line; returns the reply text (lines end in "\n"). */
  run(rest: string, context: HmpContext): string;
}

/** `info` subcommands qblockd answers, with QEMU 7.2's help lines. */
const INFO_COMMANDS: Record<string, HmpCommand> = {
  block: {
    help: ['info block [-n] [-v] [device] -- show info of one block device or all block devices (-n: show named nodes; -v: show details)'],
    run(rest, context) {
      const words = trimC(rest).split(C_BLANKS).filter(Boolean);
      const device = words.find((word) => !word.startsWith('-'));
      return infoBlock(context.blockBackends(), context.namedNodes(), { namedNodes: words.includes('-n'), verbose: words.includes('-v') }, device);
    },
  },
  status: {
    help: ['info status  -- show the current VM status (running|paused)'],
    run(_rest, context) {
      const { running, status } = context.status();
      return `VM status: ${running ? 'running' : 'paused'}${running || status === 'paused' ? '' : ` (${status})`}\n`;
    },
  },
  version: {
    help: ['info version  -- show the version of QEMU'],
    run: (_rest, { version: { qemu, package: pkg } }) => `${qemu.major}.${qemu.minor}.${qemu.micro}${pkg}\n`,
  },
};

/** The HMP commands qblockd answers (qmp-shell -H completes from `help`). */
const HMP_COMMANDS: Record<string, HmpCommand> = {
  help: {
    help: ['help|? [cmd] -- show the help'],
    run(rest) {
      const name = trimC(rest);
      if (name === '') return Object.values(HMP_COMMANDS).flatMap((command) => command.help.map((line) => line + '\n')).join('');
      if (name === 'info') return infoHelp();
      const command = HMP_COMMANDS[name];
      return command ? command.help.map((line) => line + '\n').join('') : `unknown command: '${name}'\n`;
    },
  },
  info: {
    help: ['info [subcommand] -- show various information about the system state'],
    run(rest, context) {
      const [name = '', args] = splitFirstWord(trimStartC(rest));
      if (name === '') return infoHelp();
      const subcommand = INFO_COMMANDS[name];
      return subcommand ? subcommand.run(args, context) : `unknown command: 'info ${name}'\n`;
    },
  },
  block_resize: {
    help: ['block_resize device size -- resize a block image'],
    run: (rest, context) => runBlockResize(rest, context),
  },
  'qemu-io': {
    help: [
      'qemu-io [-d] [device] "[command]" -- run a qemu-io command on a block device',
      '\t\t\t-d: [device] is a device ID rather than a drive ID or node name',
    ],
    run: (rest, context) => runQemuIo(rest, context),
  },
};

function infoHelp(): string {
  return Object.values(INFO_COMMANDS).flatMap((command) => command.help.map((line) => line + '\n')).join('');
}

const TRY_HELP = 'Try "help qemu-io" for more information\n';

/**
 * human-monitor-command as QEMU 7.2 answers the commands qblockd knows. QEMU's monitor
 * ends each line of the reply with "\r\n". `cpuIndex`: like `-M none`, qblockd has no CPU
 * to select.
 */
export function runHumanMonitorCommand(commandLine: string, context: HmpContext, cpuIndex?: number | bigint): string {
  if (cpuIndex !== undefined) throw new QmpError("Parameter 'cpu-index' expects a CPU number");
  const [name = '', rest = ''] = splitFirstWord(trimC(commandLine));
  if (name === '') return '';
  const command = HMP_COMMANDS[name === '?' ? 'help' : name];
  const reply = command ? command.run(rest, context) : `unknown command: '${name}'\n`;
  return reply.replace(/\r?\n/g, '\r\n');
}

/**
 * qemu-io: the monitor parses every argument first (its errors come back in the reply), then
 * looks the device up; qemu-io's own output goes to QEMU's stdout, not into the reply.
 */
function runQemuIo(rest: string, context: HmpContext): string {
  const trimmed = trimStartC(rest);
  const [firstWord, afterFirst] = splitFirstWord(trimmed);
  const guestDevicesOnly = firstWord === '-d';
  const device = hmpString(guestDevicesOnly ? afterFirst : trimmed);
  if (!device) return `qemu-io: block device name expected\n${TRY_HELP}`;
  const command = hmpString(device.rest);
  if (!command) return `qemu-io: string expected\n${TRY_HELP}`;
  if (trimC(command.rest) !== '') return `qemu-io: extraneous characters at the end of line\n${TRY_HELP}`;
  let target: QemuIoTarget;
  try {
    target = context.resolveQemuIoTarget(device.value, guestDevicesOnly);
  } catch (error) {
    if (error instanceof QmpError) return `Error: ${error.message}\n`;
    throw error;
  }
  return runQemuIoCommand(command.value, target, context.print);
}

/** The monitor reads a block device name, then a size in MiB unless a suffix says otherwise. */
function runBlockResize(rest: string, context: HmpContext): string {
  const tryHelp = 'Try "help block_resize" for more information\n';
  const device = hmpString(rest);
  if (!device) return `block_resize: block device name expected\n${tryHelp}`;
  const size = monitorSize(device.rest, 'm');
  if (!size) return `invalid size\n${tryHelp}`;
  if (trimC(size.rest) !== '') return `block_resize: extraneous characters at the end of line\n${tryHelp}`;
  const warning = size.warning ? `${size.warning}\n` : '';
  try {
    context.resizeDevice(device.value, size.value);
  } catch (error) {
    if (error instanceof QmpError) return `${warning}Error: ${error.message}\n`;
    throw error;
  }
  return warning;
}

function splitFirstWord(text: string): [string, string] {
  const end = text.search(C_BLANK);
  return end < 0 ? [text, ''] : [text.slice(0, end), text.slice(end)];
}

const ESCAPES: Record<string, string> = { n: '\n', r: '\r', '\\': '\\', "'": "'", '"': '"' };

/**
 * The monitor's string argument: a double-quoted string with the escapes
 * \n \r \\ \' \", or one bare word. null where the monitor says "expected":
 * nothing left, an unterminated string, an unknown escape.
 */
function hmpString(text: string): { value: string; rest: string } | null {
  const trimmed = trimStartC(text);
  if (trimmed === '') return null;
  if (!trimmed.startsWith('"')) {
    const [value, rest] = splitFirstWord(trimmed);
    return { value, rest };
  }
  let value = '';
  for (let i = 1; i < trimmed.length; i++) {
    const ch = trimmed[i]!;
    if (ch === '"') return { value, rest: trimmed.slice(i + 1) };
    if (ch !== '\\') {
      value += ch;
      continue;
    }
    const escaped = ESCAPES[trimmed[++i] ?? ''];
    if (escaped === undefined) return null;
    value += escaped;
  }
  return null;
}
