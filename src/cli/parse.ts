import { BareOptionError, CommandLineError, OptionSyntaxError } from './errors.ts';
import { MonitorBuilder, MonitorReferenceError } from './monitors.ts';
import { finishMachine, OPTION_RULES, UNSUPPORTED_QEMU_OPTIONS, type OptionRule, type ParseState } from './options.ts';
import type { CommandLine } from './types.ts';

const RULES_BY_NAME = new Map<string, OptionRule>(OPTION_RULES.flatMap((rule) => rule.names.map((name) => [name, rule])));

/**
 * Reads a qemu-system-x86_64 / qemu-storage-daemon style command line.
 * Options take one or two dashes; an argument follows as the next word or,
 * for the long form, after '=' ("--blockdev=..."). -h/-V stop reading at
 * once, as QEMU does. Throws CommandLineError naming the faulty option.
 */
export function parseCommandLine(argv: readonly string[]): CommandLine {
  const state: ParseState = {
    commandLine: { monitors: [], blockdevs: [], drives: [], objects: [], devices: [], web: false },
    monitors: new MonitorBuilder(),
    driveIds: new Set(),
    objectIds: new Set(),
  };
  let systemEmulatorLine = false;
  for (let index = 0; index < argv.length; index++) {
    const token = argv[index]!;
    const { name, inlineArgument } = splitToken(token);
    const rule = RULES_BY_NAME.get(name);
    if (!rule) throw CommandLineError.forOption(token, unknownOptionReason(token, name));
    let argument: string | undefined;
    let written = token;
    if (rule.takesArgument) {
      argument = inlineArgument ?? argv[++index];
      if (argument === undefined) throw CommandLineError.forOption(token, 'requires an argument');
      if (inlineArgument === undefined) written = `${token} ${argument}`;
    } else if (inlineArgument !== undefined) {
      throw CommandLineError.forOption(token, 'does not take an argument');
    }
    try {
      rule.apply(state, { argument: argument ?? '', written });
    } catch (error) {
      if (error instanceof BareOptionError) throw new CommandLineError(error.message);
      if (error instanceof OptionSyntaxError) throw new CommandLineError(`${written}: ${error.message}`);
      throw error;
    }
    if (state.commandLine.action) return state.commandLine;
    if (rule.systemOnly) systemEmulatorLine = true;
  }
  finishMachine(state.commandLine, systemEmulatorLine);
  try {
    const concurrentClients = state.commandLine.concurrentClients === true;
    state.commandLine.monitors = state.monitors.finish().map((monitor) => ({ ...monitor, concurrentClients }));
  } catch (error) {
    if (error instanceof MonitorReferenceError) throw new CommandLineError(`${error.option}: ${error.message}`);
    throw error;
  }
  return state.commandLine;
}

/** "--blockdev=x" -> blockdev + "x"; "-qmp" -> qmp; a bare word has no name. */
function splitToken(token: string): { name: string; inlineArgument?: string } {
  if (!token.startsWith('-')) return { name: '' };
  const body = token.startsWith('--') ? token.slice(2) : token.slice(1);
  const equals = body.indexOf('=');
  if (token.startsWith('--') && equals > 0) return { name: body.slice(0, equals), inlineArgument: body.slice(equals + 1) };
  return { name: body };
}

function unknownOptionReason(token: string, name: string): string {
  if (!token.startsWith('-')) return 'Unexpected argument';
  if (UNSUPPORTED_QEMU_OPTIONS.has(name)) return 'option not supported by qblockd';
  return 'invalid option';
}
