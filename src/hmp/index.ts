import { BlockIoError } from '../block/io-error.ts';
import { QmpError } from '../qmp/errors.ts';

/** What qemu-io needs of a block node. */
export interface QemuIoTarget {
  readonly size: number;
  /** Why a writing command is refused (read-only node, a permission conflict), or null. */
  readonly writeRefusal: string | null;
  read(offset: number, length: number): Buffer;
  write(offset: number, data: Buffer): void;
  writeZeroes(offset: number, length: number): void;
  discard(offset: number, length: number): void;
  flush(): void;
}

export interface HmpContext {
  /** Throws QmpError with QEMU's lookup message for unknown devices; `guestDevicesOnly` for qemu-io -d (guest devices by qdev id). */
  resolveQemuIoTarget(device: string, guestDevicesOnly: boolean): QemuIoTarget;
}

/**
 * human-monitor-command as QEMU 7.2 answers it for `qemu-io`. qemu-io prints
 * its results and its own argument errors on QEMU's stdout, not into the
 * reply, so a command that ran (or failed inside qemu-io) returns "".
 * Only monitor-level errors come back in the reply text.
 */
export function runHumanMonitorCommand(commandLine: string, context: HmpContext): string {
  const words = commandLine.trim();
  const [name = '', rest = ''] = splitFirstWord(words);
  if (name !== 'qemu-io') return `unknown command: '${name}'\r\n`;
  let remainder = rest;
  let [device, afterDevice] = splitFirstWord(remainder);
  const guestDevicesOnly = device === '-d';
  if (guestDevicesOnly) {
    remainder = afterDevice;
    [device, afterDevice] = splitFirstWord(remainder);
  }
  if (!device) return 'qemu-io: block device name expected\r\nTry "help qemu-io" for more information\r\n';
  const command = parseHmpString(afterDevice);
  let target: QemuIoTarget;
  try {
    target = context.resolveQemuIoTarget(device, guestDevicesOnly);
  } catch (error) {
    if (error instanceof QmpError) return `Error: ${error.message}\r\n`;
    throw error;
  }
  return runQemuIoCommand(command, target);
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

interface QemuIoCommand {
  /** Flags that take a value, and flags that do not. */
  valueFlags: string;
  plainFlags: string;
  positional: number;
  writes: boolean;
  run(target: QemuIoTarget, args: ParsedArgs, numbers: number[]): void;
}

/** qemu-io's commands that qblockd implements, with their argument shapes. */
const QEMU_IO_COMMANDS: Record<string, QemuIoCommand> = {
  write: {
    valueFlags: 'P',
    plainFlags: 'zuqfc',
    positional: 2,
    writes: true,
    run(target, args, [offset, length]) {
      if (args.flags.has('z')) target.writeZeroes(offset!, length!);
      else inPieces(offset!, length!, (at, size) => target.write(at, patternBuffer(patternOf(args), size)));
    },
  },
  read: {
    valueFlags: 'P',
    plainFlags: 'qvl',
    positional: 2,
    writes: false,
    run(target, _args, [offset, length]) {
      inPieces(offset!, length!, (at, size) => target.read(at, size));
    },
  },
  discard: {
    valueFlags: '',
    plainFlags: 'q',
    positional: 2,
    writes: true,
    run(target, _args, [offset, length]) {
      target.discard(offset!, length!);
    },
  },
  flush: { valueFlags: '', plainFlags: '', positional: 0, writes: false, run: (target) => target.flush() },
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

/** Runs one qemu-io command line. Only the read-only refusal reaches the reply, as in QEMU. */
export function runQemuIoCommand(commandLine: string, target: QemuIoTarget): string {
  const argv = commandLine.trim().split(/\s+/).filter(Boolean);
  const command = QEMU_IO_COMMANDS[argv[0] ?? ''];
  if (!command) return '';
  if (command.writes && target.writeRefusal !== null) return `${target.writeRefusal}\r\n`;
  const args = parseArgs(argv.slice(1), command);
  if (!args || args.positional.length !== command.positional) return '';
  const numbers = args.positional.map(parseQemuIoNumber);
  if (numbers.some((value) => value === null || value < 0)) return '';
  const [offset = 0, length = 0] = numbers as number[];
  if (command.positional === 2 && offset + length > target.size) return '';
  if (args.flags.has('P') && !/^(0x[0-9a-fA-F]+|[0-9]+)$/.test(String(args.flags.get('P')))) return '';
  try {
    command.run(target, args, numbers as number[]);
  } catch (error) {
    // qemu-io reports a failed request ("write failed: ...") on QEMU's stdout, not in the reply.
    if (!(error instanceof BlockIoError)) throw error;
  }
  return '';
}

function parseArgs(words: string[], command: QemuIoCommand): ParsedArgs | null {
  const flags = new Map<string, string | true>();
  let index = 0;
  for (; index < words.length && words[index]!.startsWith('-') && words[index]!.length > 1; index++) {
    const letters = words[index]!.slice(1);
    if (/^[0-9]/.test(letters)) break;
    for (let i = 0; i < letters.length; i++) {
      const letter = letters[i]!;
      if (command.valueFlags.includes(letter)) {
        const value = letters.slice(i + 1) || words[++index];
        if (value === undefined) return null;
        flags.set(letter, value);
        break;
      }
      if (!command.plainFlags.includes(letter)) return null;
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
