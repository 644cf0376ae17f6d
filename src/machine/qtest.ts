/**
 * QEMU's qtest text protocol, the part block tests use: one command per line, one reply
 * line each. With the qtest accelerator the client owns the virtual clock
 * (`clock_step [NS]`, `clock_set NS`, each answered "OK <now in ns>"); qblockd has no
 * timers, so stepping to the next deadline leaves the clock where it is. Commands that
 * touch guest memory, ports or interrupts have no guest to act on here and are
 * refused as unknown, which is also QEMU's answer to every clock command without qtest.
 */
export class QtestSession {
  private clock = 0;
  private readonly started = performance.now();

  constructor(
    private readonly clockCommands: boolean,
    /** Where QEMU's qtest log lines go (stderr unless -qtest-log says otherwise); undefined: nowhere. */
    private readonly log: ((line: string) => void) | undefined,
  ) {
    this.log?.(`[I ${this.elapsed()}] OPENED\n`);
  }

  /** One request line (without its newline); returns the reply line with its newline. */
  handle(line: string): string {
    const words = line.split(' ').filter((word) => word !== '');
    this.log?.(`[R +${this.elapsed()}]${words.map((word) => ` ${word}`).join('')}\n`);
    const reply = this.reply(words);
    this.log?.(`[S +${this.elapsed()}] ${reply}`);
    return reply;
  }

  close(): void {
    this.log?.(`[I +${this.elapsed()}] CLOSED\n`);
  }

  private reply([command = '', argument]: string[]): string {
    if (this.clockCommands && command === 'clock_step') {
      if (argument !== undefined) this.clock += parseInteger(argument);
      return `OK ${this.clock}\n`;
    }
    if (this.clockCommands && command === 'clock_set') {
      this.clock = Math.max(this.clock, parseInteger(argument ?? '0'));
      return `OK ${this.clock}\n`;
    }
    return `FAIL Unknown command '${command}'\n`;
  }

  private elapsed(): string {
    return ((performance.now() - this.started) / 1000).toFixed(6);
  }
}

/** strtoll with base 0, as QEMU reads the numbers: decimal, 0x hex or 0 octal. */
function parseInteger(text: string): number {
  if (/^0[xX][0-9a-fA-F]+$/.test(text)) return parseInt(text.slice(2), 16);
  if (/^0[0-7]+$/.test(text)) return parseInt(text.slice(1), 8);
  return Number.parseInt(text, 10) || 0;
}
