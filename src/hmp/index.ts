import { QmpError } from '../qmp/errors.ts';
import { runQemuIoCommand, type QemuIoTarget } from './qemu-io.ts';

export type { QemuIoTarget } from './qemu-io.ts';

export interface HmpContext {
  /** Throws QmpError with QEMU's lookup message for unknown devices; `guestDevicesOnly` for qemu-io -d (guest devices by qdev id). */
  resolveQemuIoTarget(device: string, guestDevicesOnly: boolean): QemuIoTarget;
}

const TRY_HELP = 'Try "help qemu-io" for more information\r\n';

/**
 * human-monitor-command as QEMU 7.2 answers it for `qemu-io`. The monitor
 * parses every argument first (its errors come back in the reply), then
 * looks the device up; qemu-io's own output goes to QEMU's stdout, not
 * into the reply. `cpuIndex`: like `-M none`, qblockd has no CPU to select.
 */
export function runHumanMonitorCommand(commandLine: string, context: HmpContext, cpuIndex?: number | bigint): string {
  if (cpuIndex !== undefined) throw new QmpError("Parameter 'cpu-index' expects a CPU number");
  const [name = '', rest = ''] = splitFirstWord(commandLine.trim());
  if (name !== 'qemu-io') return `unknown command: '${name}'\r\n`;
  let remainder = rest.trimStart();
  const guestDevicesOnly = /^-d(\s|$)/.test(remainder);
  if (guestDevicesOnly) remainder = remainder.slice(2);
  const device = hmpString(remainder);
  if (!device) return `qemu-io: block device name expected\r\n${TRY_HELP}`;
  const command = hmpString(device.rest);
  if (!command) return `qemu-io: string expected\r\n${TRY_HELP}`;
  if (command.rest.trim() !== '') return `qemu-io: extraneous characters at the end of line\r\n${TRY_HELP}`;
  let target: QemuIoTarget;
  try {
    target = context.resolveQemuIoTarget(device.value, guestDevicesOnly);
  } catch (error) {
    if (error instanceof QmpError) return `Error: ${error.message}\r\n`;
    throw error;
  }
  return runQemuIoCommand(command.value, target);
}

function splitFirstWord(text: string): [string, string] {
  const end = text.search(/\s/);
  return end < 0 ? [text, ''] : [text.slice(0, end), text.slice(end)];
}

const ESCAPES: Record<string, string> = { n: '\n', r: '\r', '\\': '\\', "'": "'", '"': '"' };

/**
 * The monitor's string argument: a double-quoted string with the escapes
 * \n \r \\ \' \", or one bare word. null where the monitor says "expected":
 * nothing left, an unterminated string, an unknown escape.
 */
function hmpString(text: string): { value: string; rest: string } | null {
  const trimmed = text.trimStart();
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
