import { QmpError } from '../qmp/errors.ts';
import type { BlockDeviceInfo, BlockInfo, VersionInfo } from '../schema/generated/qapi-types.ts';
import { infoBlock } from './info-block.ts';

/** What qemu-io needs of a block node. */
export interface QemuIoTarget {
  readonly size: number;
  readonly readOnly: boolean;
  read(offset: number, length: number): Buffer;
  write(offset: number, data: Buffer): void;
  writeZeroes(offset: number, length: number): void;
  discard(offset: number, length: number): void;
  flush(): void;
}

/** qemu-io could not attach to the node (a permission conflict): QEMU replies with the bare message. */
export class QemuIoOpenError extends Error {}

export interface HmpContext {
  /** QEMU's standard output, where qemu-io prints its reports and its own errors. */
  print(text: string): void;
  /** Throws QmpError with QEMU's lookup message for unknown devices; `guestDevicesOnly` for qemu-io -d (guest devices by qdev id). */
  resolveQemuIoTarget(device: string, guestDevicesOnly: boolean): QemuIoTarget;
  /** query-block's and query-named-block-nodes' answers, for `info block`. */
  blockBackends(): BlockInfo[];
  namedNodes(): BlockDeviceInfo[];
  version: VersionInfo;
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
      const words = rest.trim().split(/\s+/).filter(Boolean);
      if (words.includes('-v')) return 'info block -v is not supported by qblockd\n';
      const device = words.find((word) => !word.startsWith('-'));
      return infoBlock(context.blockBackends(), context.namedNodes(), words.includes('-n'), device);
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
      const name = rest.trim();
      if (name === '') return Object.values(HMP_COMMANDS).flatMap((command) => command.help.map((line) => line + '\n')).join('');
      if (name === 'info') return infoHelp();
      const command = HMP_COMMANDS[name];
      return command ? command.help.map((line) => line + '\n').join('') : `unknown command: '${name}'\n`;
    },
  },
  info: {
    help: ['info [subcommand] -- show various information about the system state'],
    run(rest, context) {
      const [name = '', args] = splitFirstWord(rest);
      if (name === '') return infoHelp();
      const subcommand = INFO_COMMANDS[name];
      return subcommand ? subcommand.run(args, context) : `unknown command: 'info ${name}'\n`;
    },
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

/**
 * human-monitor-command as QEMU 7.2 answers the commands qblockd knows. QEMU's monitor
 * ends each line of the reply with "\r\n".
 */
export function runHumanMonitorCommand(commandLine: string, context: HmpContext): string {
  const [name = '', rest = ''] = splitFirstWord(commandLine.trim());
  const command = HMP_COMMANDS[name === '?' ? 'help' : name];
  const reply = command ? command.run(rest, context) : `unknown command: '${name}'\n`;
  return reply.replace(/\r?\n/g, '\r\n');
}

/**
 * qemu-io prints its results and its own argument errors on QEMU's stdout, not into the
 * reply, so a command that ran (or failed inside qemu-io) returns "". Only monitor-level
 * errors come back in the reply text.
 */
function runQemuIo(rest: string, context: HmpContext): string {
  let remainder = rest;
  let [device, afterDevice] = splitFirstWord(remainder);
  const guestDevicesOnly = device === '-d';
  if (guestDevicesOnly) {
    remainder = afterDevice;
    [device, afterDevice] = splitFirstWord(remainder);
  }
  if (!device) return 'qemu-io: block device name expected\nTry "help qemu-io" for more information\n';
  const command = parseHmpString(afterDevice);
  let target: QemuIoTarget;
  try {
    target = context.resolveQemuIoTarget(device, guestDevicesOnly);
  } catch (error) {
    if (error instanceof QemuIoOpenError) return `${error.message}\n`;
    if (error instanceof QmpError) return `Error: ${error.message}\n`;
    throw error;
  }
  return runQemuIoCommand(command, target, context.print);
}

function splitFirstWord(text: string): [string, string] {
  const trimmed = text.trimStart();
  const end = trimmed.search(/\s/);
  return end < 0 ? [trimmed, ''] : [trimmed.slice(0, end), trimmed.slice(end)];
}

/** HMP's string argument: a double-quoted string with backslash escapes, or one bare word. */
function parseHmpString(text: string): string {
  const trimmed = text.trimStart();
  if (!trimmed.startsWith('"')) return splitFirstWord(trimmed)[0];
  let result = '';
  for (let i = 1; i < trimmed.length; i++) {
    const ch = trimmed[i]!;
    if (ch === '"') break;
    if (ch === '\\' && i + 1 < trimmed.length) {
      const next = trimmed[++i]!;
      result += next === 'n' ? '\n' : next === 'r' ? '\r' : next;
    } else {
      result += ch;
    }
  }
  return result;
}

interface ParsedArgs {
  flags: Map<string, string | true>;
  positional: string[];
}

/** What one qemu-io command did, for the report qemu-io prints after it. */
interface IoDone {
  verb: string;
  offset: number;
  length: number;
}

interface QemuIoCommand {
  /** The name qemu-io reports errors under (aliases report as their command). */
  name: string;
  /** Flags that take a value, and flags that do not. */
  valueFlags: string;
  plainFlags: string;
  /** Positional arguments: `minimum` checked by qemu-io's dispatcher, `exact` by the command. */
  positional: { minimum: number; exact: number; atMost?: number };
  usage: string;
  writes: boolean;
  /** Runs the command; returns what to report, or a message to print instead. */
  run(target: QemuIoTarget, args: ParsedArgs, numbers: number[]): IoDone | string | undefined;
}

const WRITE_USAGE = 'write [-bcCfnquz] [-P pattern | -s source_file] off len -- writes a number of bytes at a specified offset';
const READ_USAGE = 'read [-abCqv] [-P pattern [-s off] [-l len]] off len -- reads a number of bytes at a specified offset';
const DISCARD_USAGE = 'discard [-Cq] off len -- discards a number of bytes at a specified offset';

/** qemu-io's commands that qblockd implements, with their argument shapes and usage lines (QEMU 7.2's). */
const QEMU_IO_COMMANDS: Record<string, QemuIoCommand> = {
  write: {
    name: 'write',
    valueFlags: 'Ps',
    plainFlags: 'bcCfnquz',
    positional: { minimum: 2, exact: 2 },
    usage: WRITE_USAGE,
    writes: true,
    run(target, args, [offset, length]) {
      if (['z', 'P', 's'].filter((flag) => args.flags.has(flag)).length > 1) return 'Only one of -z, -P, and -s can be specified at the same time';
      if (args.flags.has('z')) target.writeZeroes(offset!, length!);
      else inPieces(offset!, length!, (at, size) => target.write(at, patternBuffer(patternOf(args), size)));
      return { verb: 'wrote', offset: offset!, length: length! };
    },
  },
  read: {
    name: 'read',
    valueFlags: 'Psl',
    plainFlags: 'abCqv',
    positional: { minimum: 2, exact: 2 },
    usage: READ_USAGE,
    writes: false,
    run(target, args, [offset, length]) {
      let mismatch = false;
      const pattern = args.flags.has('P') ? patternOf(args) : undefined;
      inPieces(offset!, length!, (at, size) => {
        const data = target.read(at, size);
        if (pattern !== undefined && data.some((byte) => byte !== pattern)) mismatch = true;
      });
      const done = { verb: 'read', offset: offset!, length: length! };
      return mismatch ? `Pattern verification failed at offset ${offset}, ${length} bytes\n${report(done)}`.trimEnd() : done;
    },
  },
  discard: {
    name: 'discard',
    valueFlags: '',
    plainFlags: 'Cq',
    positional: { minimum: 2, exact: 2 },
    usage: DISCARD_USAGE,
    writes: true,
    run(target, _args, [offset, length]) {
      target.discard(offset!, length!);
      return { verb: 'discard', offset: offset!, length: length! };
    },
  },
  flush: {
    name: 'flush',
    valueFlags: '',
    plainFlags: '',
    positional: { minimum: 0, exact: 0, atMost: 0 },
    usage: 'flush -- flush all in-core file state to disk',
    writes: false,
    run: (target) => void target.flush(),
  },
};
QEMU_IO_COMMANDS.aio_write = QEMU_IO_COMMANDS.write!;
QEMU_IO_COMMANDS.aio_discard = QEMU_IO_COMMANDS.discard!;
QEMU_IO_COMMANDS.aio_read = QEMU_IO_COMMANDS.read!;
QEMU_IO_COMMANDS.w = QEMU_IO_COMMANDS.write!;
QEMU_IO_COMMANDS.r = QEMU_IO_COMMANDS.read!;

/**
 * Guest I/O goes down in pieces of at most this size, as QEMU's block layer
 * splits requests: a 16 GiB qemu-io write must not need a 16 GiB buffer.
 */
const IO_PIECE = 16 << 20;

function inPieces(offset: number, length: number, io: (offset: number, length: number) => void): void {
  for (let done = 0; done < length; done += IO_PIECE) io(offset + done, Math.min(IO_PIECE, length - done));
}

/**
 * One pattern-filled buffer, kept between commands: filling 16 MiB costs more
 * than marking the bitmaps. Drivers copy or write synchronously and keep no
 * reference, so sharing it is safe.
 */
let patternCache: { byte: number; buffer: Buffer } | undefined;

function patternBuffer(byte: number, length: number): Buffer {
  if (patternCache?.byte !== byte) patternCache = { byte, buffer: Buffer.allocUnsafe(IO_PIECE).fill(byte) };
  return patternCache.buffer.subarray(0, length);
}

function patternOf(args: ParsedArgs): number {
  const pattern = args.flags.get('P');
  return typeof pattern === 'string' ? Number(pattern) & 0xff : 0xcd;
}

/**
 * Runs one qemu-io command line. Only the read-only refusal reaches the reply, as in QEMU;
 * qemu-io's report and its own errors go to `print`, QEMU's standard output.
 */
export function runQemuIoCommand(commandLine: string, target: QemuIoTarget, print: (text: string) => void): string {
  const argv = commandLine.trim().split(/\s+/).filter(Boolean);
  const command = QEMU_IO_COMMANDS[argv[0] ?? ''];
  const say = (line: string): string => {
    print(line + '\n');
    return '';
  };
  if (!command) return say(`command "${argv[0] ?? ''}" not found`);
  if (command.writes && target.readOnly) return 'Block node is read-only\n';
  const given = argv.length - 1;
  const { minimum, exact, atMost } = command.positional;
  if (given < minimum || (atMost !== undefined && given > atMost)) {
    const expected = atMost === minimum ? `${minimum}` : `at least ${minimum}`;
    return say(`bad argument count ${given} to ${command.name}, expected ${expected} arguments`);
  }
  const args = parseArgs(argv.slice(1), command);
  if (typeof args === 'string') return say(`${command.name}: invalid option -- '${args}'\n${command.usage}`);
  if (args.positional.length !== exact) return say(command.usage);
  const pattern = args.flags.get('P');
  if (pattern !== undefined && !/^(0x[0-9a-fA-F]+|[0-9]+)$/.test(String(pattern))) return say(`${String(pattern)} is not a valid pattern byte`);
  const numbers: number[] = [];
  for (const text of args.positional) {
    const value = parseQemuIoNumber(text);
    if (value === null) return say(`Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- ${text}`);
    numbers.push(value);
  }
  const [offset = 0, length = 0] = numbers;
  if (exact === 2 && offset + length > target.size) return say(`${command.name} failed: Input/output error`);
  const started = performance.now();
  const outcome = command.run(target, args, numbers);
  if (typeof outcome === 'string') return say(outcome);
  if (outcome && !args.flags.has('q')) print(report(outcome, (performance.now() - started) / 1000));
  return '';
}

/** qemu-io's two report lines after a request. */
function report({ verb, offset, length }: IoDone, seconds = 0): string {
  const elapsed = Math.max(seconds, 1e-6);
  const time = `${elapsed.toFixed(2).padStart(5, '0')} sec`;
  return (
    `${verb} ${length}/${length} bytes at offset ${offset}\n` +
    `${humanSize(length)}, 1 ops; ${time} (${humanSize(length / elapsed)}/sec and ${(1 / elapsed).toFixed(4)} ops/sec)\n`
  );
}

const SIZE_UNITS: Array<[number, string]> = [
  [2 ** 60, 'EiB'], [2 ** 50, 'PiB'], [2 ** 40, 'TiB'], [2 ** 30, 'GiB'], [2 ** 20, 'MiB'], [2 ** 10, 'KiB'],
];

/** qemu-io's cvtstr: three decimals in the largest binary unit, ".000" dropped. */
function humanSize(value: number): string {
  const [scale, unit] = SIZE_UNITS.find(([scale]) => value >= scale) ?? [1, 'bytes'];
  return `${(value / scale).toFixed(3).replace(/\.000$/, '')} ${unit}`;
}

/** Flags before the positional arguments; an unknown flag letter is returned as the error. */
function parseArgs(words: string[], command: QemuIoCommand): ParsedArgs | string {
  const flags = new Map<string, string | true>();
  let index = 0;
  for (; index < words.length && words[index]!.startsWith('-') && words[index]!.length > 1; index++) {
    const letters = words[index]!.slice(1);
    if (/^[0-9]/.test(letters)) break;
    for (let i = 0; i < letters.length; i++) {
      const letter = letters[i]!;
      if (command.valueFlags.includes(letter)) {
        const value = letters.slice(i + 1) || words[++index];
        if (value === undefined) return letter;
        flags.set(letter, value);
        break;
      }
      if (!command.plainFlags.includes(letter)) return letter;
      flags.set(letter, true);
    }
  }
  return { flags, positional: words.slice(index) };
}

const SUFFIXES: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50, e: 2 ** 60 };

/** qemu-io's cvtnum: a decimal number with an optional binary suffix. */
export function parseQemuIoNumber(text: string): number | null {
  const match = /^([0-9]+(?:\.[0-9]+)?)([bkmgtpeBKMGTPE]?)$/.exec(text);
  if (!match) return null;
  const value = Number(match[1]) * SUFFIXES[match[2]!.toLowerCase()]!;
  return Number.isInteger(value) ? value : null;
}
