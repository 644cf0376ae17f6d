import { OptionSyntaxError } from './errors.ts';
import { readValue, spanUntil } from './scan.ts';
import { isWellFormedId } from '../qmp/well-formed-id.ts';

/**
 * QEMU's older flat option syntax (QemuOpts: -drive, -chardev, -mon, -machine,
 * and what follows "unix:PATH" in -qmp), as QEMU 7.2 parses it:
 *
 * - items separated by ','; ',,' stands for one ',' in a value (and in an
 *   implied first value);
 * - with `impliedKey`, a first item without '=' is that key's value
 *   ("socket,id=c0" is backend=socket);
 * - any other item without '=' is a short-form boolean: "server" is
 *   server=on, "nowait" is wait=off (deprecated in QEMU, still accepted);
 * - a key given twice: the last value wins.
 *
 * Keys are kept flat ("file.filename" stays one key) and in first-seen order.
 */
export function parseQemuOpts(text: string, impliedKey?: string): Record<string, string> {
  const options: Record<string, string> = {};
  let position = 0;
  while (position < text.length) {
    const nameLength = spanUntil(text, position, '=,');
    const nameEnd = position + nameLength;
    if (text[nameEnd] === '=') {
      const { value, next } = readValue(text, nameEnd + 1);
      options[text.slice(position, nameEnd)] = value;
      position = next;
    } else if (position === 0 && impliedKey !== undefined) {
      const { value, next } = readValue(text, 0);
      options[impliedKey] = value;
      position = next;
    } else {
      const flag = text.slice(position, nameEnd);
      const [name, value] = flag.startsWith('no') ? [flag.slice(2), 'off'] : [flag, 'on'];
      options[name] = value;
      position = text[nameEnd] === ',' ? nameEnd + 1 : nameEnd;
    }
  }
  return options;
}

/** QEMU's on/off parsing, shared by QemuOpts and keyval booleans. */
export function parseBoolean(name: string, value: string): boolean {
  if (['on', 'yes', 'true', 'y'].includes(value)) return true;
  if (['off', 'no', 'false', 'n'].includes(value)) return false;
  throw new OptionSyntaxError(`Parameter '${name}' expects 'on' or 'off'`);
}

/** QemuOpts ids: a letter, then letters, digits, '-', '.', '_'. */
export function checkIdentifier(id: string): void {
  if (!isWellFormedId(id)) throw new OptionSyntaxError("Parameter 'id' expects an identifier");
}

/** Rejects keys outside `accepted` the way QemuOpts does. */
export function checkKnownKeys(options: Record<string, string>, accepted: ReadonlySet<string>): void {
  for (const key of Object.keys(options)) {
    if (!accepted.has(key)) throw new OptionSyntaxError(`Invalid parameter '${key}'`);
  }
}
