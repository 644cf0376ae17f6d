import { JsonFloat } from './json-value.ts';
import { qdictKeyOrder } from './qdict-order.ts';

/**
 * Serialises a value exactly as QEMU 7.2's QMP monitor prints it: ", " and ": "
 * separators, object keys in QDict order, doubles as "%.17g", every character
 * outside printable ASCII as an upper-case \uXXXX escape. `pretty` is QEMU's
 * pretty=on layout: one member per line, four spaces per level, and an empty
 * object or array still split over two lines. Lines end in "\n"; the monitor
 * socket sends each as "\r\n", as QEMU's monitor does.
 */
export function toQmpJson(value: unknown, pretty = false): string {
  return toQmpJsonParts(value, pretty).join('');
}

/** The same text in pieces, so that a huge reply can be written out without first being joined. */
export function toQmpJsonParts(value: unknown, pretty = false): string[] {
  const parts: string[] = [];
  write(value, parts, pretty ? 0 : -1);
  return parts;
}

/** `level` is the pretty-printing depth, or -1 for the single-line form. */
function write(value: unknown, out: string[], level: number): void {
  switch (typeof value) {
    case 'string':
      if (NEEDS_ESCAPE.test(value)) out.push(quoteString(value));
      else out.push('"', value, '"');
      return;
    case 'number':
      out.push(formatNumber(value));
      return;
    case 'bigint':
      out.push(value.toString());
      return;
    case 'boolean':
      out.push(value ? 'true' : 'false');
      return;
    case 'object':
      if (value === null) {
        out.push('null');
      } else if (value instanceof JsonFloat) {
        out.push(formatNumber(value.value));
      } else if (Array.isArray(value)) {
        out.push('[');
        for (let i = 0; i < value.length; i++) {
          startMember(i === 0, out, level);
          write(value[i], out, inner(level));
        }
        endMembers(']', out, level);
      } else {
        const object = value as Record<string, unknown>;
        out.push('{');
        let first = true;
        for (const { key, prefix } of printOrder(object)) {
          const member = object[key];
          if (member === undefined) continue;
          startMember(first, out, level);
          first = false;
          out.push(prefix);
          write(member, out, inner(level));
        }
        endMembers('}', out, level);
      }
      return;
    default:
      out.push('null');
  }
}

const inner = (level: number) => (level < 0 ? level : level + 1);
const indent = (level: number) => '\n' + '    '.repeat(level);

function startMember(first: boolean, out: string[], level: number): void {
  if (!first) out.push(level < 0 ? ', ' : ',');
  if (level >= 0) out.push(indent(level + 1));
}

/** Pretty output splits even an empty object or array over two lines, as QEMU's does. */
function endMembers(close: string, out: string[], level: number): void {
  if (level >= 0) out.push(indent(level));
  out.push(close);
}

/** A key in print order, with its printed `"key": ` prefix. */
interface PrintedKey {
  key: string;
  prefix: string;
}

/**
 * Objects by list of keys, as a trie: replies repeat a few shapes (one per QAPI
 * type) many times over, e.g. one BlockDirtyInfo per bitmap, so each shape's QDict
 * order and printed keys are worked out once. Bounded; past the bound, worked out each time.
 */
interface Shape {
  next: Map<string, Shape>;
  order?: PrintedKey[];
}
const shapes: Shape = { next: new Map() };
let shapeCount = 0;
const MAX_SHAPES = 4096;

function printOrder(object: Record<string, unknown>): PrintedKey[] {
  const keys = Object.keys(object);
  let shape = shapes;
  for (const key of keys) {
    let next = shape.next.get(key);
    if (next === undefined) {
      if (shapeCount >= MAX_SHAPES) return printedKeys(keys);
      shape.next.set(key, (next = { next: new Map() }));
      shapeCount++;
    }
    shape = next;
  }
  return (shape.order ??= printedKeys(keys));
}

function printedKeys(keys: string[]): PrintedKey[] {
  return qdictKeyOrder(keys).map((key) => ({ key, prefix: quoteString(key) + ': ' }));
}

const SHORT_ESCAPES: Record<string, string> = {
  '"': '\\"',
  '\\': '\\\\',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
};

// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /["\\\u0000-\u001f\u007f-\uffff]/;

function quoteString(text: string): string {
  if (!NEEDS_ESCAPE.test(text)) return `"${text}"`;
  let result = '"';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    const code = text.charCodeAt(i);
    const short = SHORT_ESCAPES[ch];
    if (short !== undefined) result += short;
    else if (code >= 0x20 && code < 0x7f) result += ch;
    else result += '\\u' + code.toString(16).toUpperCase().padStart(4, '0');
  }
  return result + '"';
}

/** Integers print as integers; everything else as C's printf("%.17g"). */
export function formatNumber(value: number): string {
  if (Object.is(value, -0)) return '-0';
  if (Number.isSafeInteger(value)) return String(value);
  if (!Number.isFinite(value)) return Number.isNaN(value) ? 'nan' : value > 0 ? 'inf' : '-inf';
  return formatG17(value);
}

function formatG17(value: number): string {
  const [mantissa, exponentText] = value.toExponential(16).split('e') as [string, string];
  const exponent = Number(exponentText);
  if (exponent < -4 || exponent >= 17) {
    const digits = stripTrailingZeros(mantissa);
    const sign = exponent < 0 ? '-' : '+';
    return `${digits}e${sign}${String(Math.abs(exponent)).padStart(2, '0')}`;
  }
  return stripTrailingZeros(value.toFixed(Math.max(0, 16 - exponent)));
}

function stripTrailingZeros(text: string): string {
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
}
