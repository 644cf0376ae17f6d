/**
 * A command-line mistake. `message` is the line to print after "qblockd: ",
 * in qemu-system-x86_64's form: "<option> <argument>: <reason>" when the
 * argument is at fault, "<option>: <reason>" otherwise. The program name is
 * left to the printer (main.ts) so that it is written once.
 */
export class CommandLineError extends Error {
  override readonly name = 'CommandLineError';

  constructor(message: string) {
    super(message);
  }

  /** "-qmp unix:/x,wait=on: <reason>" */
  static forArgument(option: string, argument: string, reason: string): CommandLineError {
    return new CommandLineError(`${option} ${argument}: ${reason}`);
  }

  /** "-bogus: invalid option" */
  static forOption(option: string, reason: string): CommandLineError {
    return new CommandLineError(`${option}: ${reason}`);
  }
}

/** A syntax error inside one option argument, before the option is known to the caller. */
export class OptionSyntaxError extends Error {
  override readonly name = 'OptionSyntaxError';
}

/** A syntax error QEMU reports without naming the option ("unknown vga type: foo"). */
export class BareOptionError extends OptionSyntaxError {}
