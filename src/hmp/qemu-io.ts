import { BlockIoError } from '../block/io-error.ts';
import { ENOMEDIUM } from '../errno.ts';
import type { ZeroWriteFlags } from '../block/drivers/driver.ts';
import { monitorSize } from './size.ts';
import { finishesAt, measureDue, now } from '../block/throttle/completion.ts';
/** What qemu-io needs of a block node. */
export interface QemuIoTarget {
  /** Null for a drive without a medium: its requests fail before any range check. */
  readonly size: number | null;
  /** Why a writing command is refused (read-only node, a permission conflict), or null. */
  readonly writeRefusal: string | null;
  /** A writing command was let through: a device's BlockBackend keeps the write permission it took. */
  tookWrite?(): void;
  read(offset: number, length: number): Buffer;
  write(offset: number, data: Buffer): void;
  writeZeroes(offset: number, length: number, flags: ZeroWriteFlags): void;
  /** A compressed write (`write -c`); fails with ENOTSUP where the driver cannot compress. */
  writeCompressed(offset: number, data: Buffer): void;
  discard(offset: number, length: number): void;
  flush(): void;
}

const noMedium = (): never => {
  throw new BlockIoError(ENOMEDIUM);
};

/** A drive without a medium: every request fails with ENOMEDIUM before any range check; a flush does nothing. */
export const NO_MEDIUM_TARGET: QemuIoTarget = {
  size: null,
  writeRefusal: null,
  read: noMedium,
  write: noMedium,
  writeZeroes: noMedium,
  writeCompressed: noMedium,
  discard: noMedium,
  flush: () => {},
};

/** QEMU's BDRV_REQUEST_MAX_BYTES: the largest request qemu-io sends without -n. */
export const MAX_REQUEST_BYTES = 2 ** 31 - 512;
/**
 * qemu-io's cvtnum (QEMU 7.2's qemu_strtosz in bytes): the whole operand must be
 * the size. Hex with a suffix is accepted with a warning that goes into the
 * monitor reply. `null` for what qemu-io refuses (it prints why, on stdout).
 */
export function cvtnum(text: string): { value: bigint; warning?: string } | null {
  const parsed = monitorSize(text, 'b');
  if (!parsed || parsed.rest !== '') return null;
  return parsed.warning ? { value: parsed.value, warning: parsed.warning } : { value: parsed.value };
}

/** GNU getopt as qemu-io uses it: options may follow the operands, `--` ends them, `X:` takes a value. */
function getopt(words: string[], optstring: string): { flags: Map<string, string | true>; operands: string[] } | { badOption: string } {
  const flags = new Map<string, string | true>();
  const operands: string[] = [];
  for (let index = 0; index < words.length; index++) {
    const word = words[index]!;
    if (word === '--') {
      operands.push(...words.slice(index + 1));
      break;
    }
    if (!word.startsWith('-') || word === '-') {
      operands.push(word);
      continue;
    }
    for (let at = 1; at < word.length; at++) {
      const letter = word[at]!;
      const spec = optstring.indexOf(letter);
      if (spec < 0 || letter === ':') return { badOption: letter };
      if (optstring[spec + 1] === ':') {
        const value = word.slice(at + 1) || words[++index];
        if (value === undefined) return { badOption: letter };
        flags.set(letter, value);
        break;
      }
      flags.set(letter, true);
    }
  }
  return { flags, operands };
}

/** qemu-io's pattern byte: strtol base 0 (decimal, 0x hex, 0 octal), 0..255. */
function patternByte(text: string): number | null {
  if (!/^\s*[+-]?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.test(text)) return null;
  const trimmed = text.trim().replace(/^\+/, '');
  const negative = trimmed.startsWith('-');
  const digits = negative ? trimmed.slice(1) : trimmed;
  const value = /^0[xX]/.test(digits) ? parseInt(digits.slice(2), 16) : digits.length > 1 && digits.startsWith('0') ? parseInt(digits, 8) : parseInt(digits, 10);
  return !negative && value <= 255 ? value : null;
}

type Flags = Map<string, string | true>;

/** One request as qemu-io would send it, once its arguments passed every check. */
interface Request {
  offset: number;
  length: number;
  flags: Flags;
}

interface QemuIoCommand {
  /** The name qemu-io's messages use (aliases report as their command). */
  name: string;
  /** The usage line qemu-io prints after an option or operand error (QEMU 7.2's text). */
  usage: string;
  /** The verb of the report after a request ("wrote 4096/4096 bytes at offset 0"). */
  verb: string;
  /** getopt's option string. */
  optstring: string;
  /** Operands: offset then lengths; `vector` commands take one or more lengths. */
  vector: boolean;
  /** Fewer or more operands: qemu-io prints its usage and does nothing. */
  operands?: number;
  writes: boolean;
  /** Checks on the flags, in qemu-io's order; any failing one means nothing is done (and prints `message` if known). */
  flagRules: FlagRule[];
  /** Lengths above MAX_REQUEST_BYTES are refused (qemu-io prints its own text for each command). */
  limitsLength(flags: Flags): boolean;
  /** What qemu-io prints, and does nothing, for these numbers: checked before the request meets the node. */
  operandProblem?(offset: bigint, length: bigint, flags: Flags): string | undefined;
  /** Does the request; returns a line qemu-io prints before its report, if any. */
  run(target: QemuIoTarget, request: Request): string | undefined | void;
  /** qemu-io returns the command's failure without printing it (flush). */
  quietFailure?: true;
}

interface FlagRule {
  holds(flags: Flags): boolean;
  /** What qemu-io prints when the rule fails; undefined where QEMU's text has not been observed. */
  message?(flags: Flags): string;
}

const onlyOneSource: FlagRule = {
  holds: (flags) => [flags.has('z'), flags.has('P'), flags.has('s')].filter(Boolean).length <= 1,
  message: () => 'Only one of -z, -P, and -s can be specified at the same time',
};
const needsZ = (letter: string): FlagRule => ({
  holds: (flags) => !flags.has(letter) || flags.has('z'),
  message: () => `-${letter} requires -z to be specified`,
});
const validPattern: FlagRule = {
  holds: (flags) => !flags.has('P') || patternByte(String(flags.get('P'))) !== null,
  message: (flags) => `${String(flags.get('P'))} is not a valid pattern byte`,
};

function guestWrite(target: QemuIoTarget, { offset, length, flags }: Request): void {
  // -b writes the VM state area and -s copies a host file: neither is guest data qblockd tracks.
  if (flags.has('b') || flags.has('s')) return;
  if (flags.has('z')) target.writeZeroes(offset, length, { mayUnmap: flags.has('u'), noFallback: flags.has('n') });
  else if (flags.has('c')) target.writeCompressed(offset, patternBuffer(patternOf(flags), length));
  else inPieces(offset, length, (at, size) => target.write(at, patternBuffer(patternOf(flags), size)));
}

/** Reads; with -P, checks the data against the pattern as qemu-io does. */
function guestRead(target: QemuIoTarget, { offset, length, flags }: Request): string | undefined {
  const pattern = flags.has('P') ? patternOf(flags) : undefined;
  let matches = true;
  inPieces(offset, length, (at, size) => {
    const data = target.read(at, size);
    if (pattern !== undefined && data.some((byte) => byte !== pattern)) matches = false;
  });
  return matches ? undefined : `Pattern verification failed at offset ${offset}, ${length} bytes`;
}

const WRITE_USAGE = 'write [-bcCfnquz] [-P pattern | -s source_file] off len -- writes a number of bytes at a specified offset';
const READ_USAGE = 'read [-abCqv] [-P pattern [-s off] [-l len]] off len -- reads a number of bytes at a specified offset';
const DISCARD_USAGE = 'discard [-Cq] off len -- discards a number of bytes at a specified offset';

const WRITE: QemuIoCommand = {
  name: 'write',
  usage: WRITE_USAGE,
  verb: 'wrote',
  optstring: 'bcCfnpP:quzs:',
  vector: false,
  operands: 2,
  writes: true,
  // qemu-io reads the pattern while it parses the options, so a bad one is found first.
  flagRules: [
    validPattern,
    { holds: (flags) => !(flags.has('b') && flags.has('z')), message: () => '-b and -z cannot be specified at the same time' },
    { holds: (flags) => !(flags.has('f') && (flags.has('b') || flags.has('c'))), message: () => '-f and -b or -c cannot be specified at the same time' },
    needsZ('n'),
    needsZ('u'),
    onlyOneSource,
  ],
  limitsLength: (flags) => !flags.has('n'),
  // The VM state area and compressed writes take whole sectors.
  operandProblem: (offset, length, flags) => {
    if (!flags.has('b') && !flags.has('c')) return undefined;
    if (offset % 512n) return `${offset} is not a sector-aligned value for 'offset'`;
    if (length % 512n) return `${length} is not a sector-aligned value for 'count'`;
    return undefined;
  },
  run: guestWrite,
};

const AIO_WRITE: QemuIoCommand = {
  name: 'aio_write',
  usage: 'aio_write [-Cfiquz] [-P pattern] off len [len..] -- asynchronously writes a number of bytes',
  verb: 'wrote',
  optstring: 'CfiqzuP:',
  vector: true,
  writes: true,
  // QEMU 7.2's aio_write never records -P, so its -z/-P conflict check never fires: -z wins.
  flagRules: [validPattern, needsZ('u')],
  limitsLength: (flags) => !flags.has('z'),
  run: guestWrite,
};

const READ: QemuIoCommand = {
  name: 'read',
  usage: READ_USAGE,
  verb: 'read',
  optstring: 'abCqvP:s:l:',
  vector: false,
  operands: 2,
  writes: false,
  flagRules: [validPattern],
  limitsLength: () => true,
  run: guestRead,
};

const READV: QemuIoCommand = {
  name: 'readv',
  usage: 'readv [-Cqv] [-P pattern] off len [len..] -- reads a number of bytes at a specified offset',
  verb: 'read',
  optstring: 'CqvP:',
  vector: true,
  writes: false,
  flagRules: [validPattern],
  limitsLength: () => true,
  run: guestRead,
};

/** qemu-io's commands that qblockd implements, by every name qemu-io accepts for them. */
const QEMU_IO_COMMANDS: Record<string, QemuIoCommand> = {
  write: WRITE,
  w: WRITE,
  writev: {
    ...AIO_WRITE,
    name: 'writev',
    usage: 'writev [-Cfq] [-P pattern] off len [len..] -- writes a number of bytes at a specified offset',
    optstring: 'CfqP:',
    flagRules: [validPattern],
    limitsLength: () => true,
  },
  aio_write: AIO_WRITE,
  read: READ,
  r: READ,
  readv: READV,
  aio_read: { ...READV, name: 'aio_read', usage: 'aio_read [-Ciqv] [-P pattern] off len [len..] -- asynchronously reads a number of bytes', optstring: 'CiqvP:' },
  discard: {
    name: 'discard',
    usage: DISCARD_USAGE,
    verb: 'discard',
    optstring: 'Cq',
    vector: false,
    operands: 2,
    writes: true,
    flagRules: [],
    limitsLength: () => true,
    run: (target, { offset, length }) => target.discard(offset, length),
  },
  flush: {
    name: 'flush',
    usage: 'flush -- flush all in-core file state to disk',
    verb: '',
    optstring: '',
    vector: false,
    operands: 0,
    writes: false,
    flagRules: [],
    limitsLength: () => false,
    run: (target) => target.flush(),
    quietFailure: true,
  },
};
QEMU_IO_COMMANDS.aio_flush = QEMU_IO_COMMANDS.flush!;

/**
 * Runs one qemu-io command line. qemu-io prints its results and argument errors on QEMU's
 * stdout (`print`); only the read-only refusal and the warnings of the number parser reach
 * the monitor reply, so they are all that is returned.
 */
export function runQemuIoCommand(commandLine: string, target: QemuIoTarget, print: (text: string) => void): string {
  const argv = commandLine.trim().split(/\s+/).filter(Boolean);
  const say = (line: string, warnings: string[] = []): string => {
    print(`${line}\n`);
    return reply(warnings);
  };
  const command = QEMU_IO_COMMANDS[argv[0] ?? ''];
  if (!command) return say(`command "${argv[0] ?? ''}" not found`);
  // qemu-io counts the words (flags included) before it asks for the write permission.
  const countProblem = argumentCountProblem(command, argv.length - 1);
  if (countProblem) return say(countProblem);
  if (command.writes && target.writeRefusal !== null) return `${target.writeRefusal}\r\n`;
  if (command.writes) target.tookWrite?.();
  const parsed = getopt(argv.slice(1), command.optstring);
  if ('badOption' in parsed) return say(`${command.name}: invalid option -- '${parsed.badOption}'\n${command.usage}`);
  const { flags, operands } = parsed;
  const wrongCount = command.vector ? operands.length < 2 : operands.length !== command.operands;
  if (wrongCount) return say(command.usage);
  const failed = command.flagRules.find((rule) => !rule.holds(flags));
  if (failed) return failed.message ? say(failed.message(flags)) : '';
  if (operands.length === 0) {
    runRequest(command, target, { offset: 0, length: 0, flags }, print);
    return '';
  }
  const warnings: string[] = [];
  const numbers: bigint[] = [];
  for (const operand of operands) {
    const number = cvtnum(operand);
    if (!number) return say(`Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- ${operand}`, warnings);
    if (number.warning) warnings.push(number.warning);
    numbers.push(number.value);
    if (numbers.length > 1 && command.limitsLength(flags) && number.value > BigInt(MAX_REQUEST_BYTES)) {
      return say(`length cannot exceed ${MAX_REQUEST_BYTES}, given ${operand}`, warnings);
    }
  }
  const [offset, ...lengths] = numbers as [bigint, ...bigint[]];
  const length = lengths.reduce((sum, each) => sum + each, 0n);
  const operandProblem = command.operandProblem?.(offset, length, flags);
  if (operandProblem) return say(operandProblem, warnings);
  if (target.size !== null && offset + length > BigInt(target.size)) return say(`${command.name} failed: Input/output error`, warnings);
  const request = { offset: Number(offset), length: Number(length), flags };
  const started = now();
  // A throttled request is done at once but due later: the report counts the time until it is due, as QEMU's does.
  const { dueAt, outcome } = measureDue(() => length === 0n || runRequest(command, target, request, print));
  finishesAt(dueAt);
  if ('error' in outcome) throw outcome.error;
  if (!outcome.value) return reply(warnings);
  if (!flags.has('q')) print(report(command.verb, request, (Math.max(now(), dueAt) - started) / 1000));
  return reply(warnings);
}

/** Does one request; a failed one is reported on stdout as qemu-io does ("write failed: ..."). */
function runRequest(command: QemuIoCommand, target: QemuIoTarget, request: Request, print: (text: string) => void): boolean {
  try {
    const note = command.run(target, request);
    if (note) print(`${note}\n`);
    return true;
  } catch (error) {
    if (!(error instanceof BlockIoError)) throw error;
    if (!command.quietFailure) print(`${command.name} failed: ${error.message}\n`);
    return false;
  }
}

/** qemu-io's own check of the argument count, before option parsing: QEMU 7.2's texts. */
function argumentCountProblem(command: QemuIoCommand, given: number): string | undefined {
  const minimum = command.operands ?? 2;
  const maximum = command.operands === 0 ? 0 : undefined;
  if (given >= minimum && (maximum === undefined || given <= maximum)) return undefined;
  const expected = maximum === minimum ? `${minimum}` : `at least ${minimum}`;
  return `bad argument count ${given} to ${command.name}, expected ${expected} arguments`;
}

/** qemu-io's two report lines after a request. */
function report(verb: string, { offset, length }: Request, seconds: number): string {
  const elapsed = Math.max(seconds, 1e-6);
  return (
    `${verb} ${length}/${length} bytes at offset ${offset}\n` +
    `${humanSize(length)}, 1 ops; ${elapsed.toFixed(2).padStart(5, '0')} sec ` +
    `(${humanSize(length / elapsed)}/sec and ${(1 / elapsed).toFixed(4)} ops/sec)\n`
  );
}

const SIZE_UNITS: Array<[number, string]> = [
  [2 ** 60, 'EiB'], [2 ** 50, 'PiB'], [2 ** 40, 'TiB'], [2 ** 30, 'GiB'], [2 ** 20, 'MiB'], [2 ** 10, 'KiB'],
];

/** qemu-io's cvtstr: three decimals in the largest binary unit, ".000" dropped. */
function humanSize(value: number): string {
  const [scale, unit] = SIZE_UNITS.find(([threshold]) => value >= threshold) ?? [1, 'bytes'];
  return `${(value / scale).toFixed(3).replace(/\.000$/, '')} ${unit}`;
}

function reply(warnings: string[]): string {
  return warnings.map((warning) => `${warning}\r\n`).join('');
}

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

function patternOf(flags: Flags): number {
  const pattern = flags.get('P');
  return typeof pattern === 'string' ? patternByte(pattern)! : 0xcd;
}
