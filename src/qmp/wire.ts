import { JsonFloat } from './json-value.ts';
import { qdictKeyOrder } from './qdict-order.ts';

/**
 * Serialises a value exactly as QEMU 7.2's QMP monitor prints it: ", " and ": "
 * separators, object keys in QDict order, doubles as "%.17g", every character
 * outside printable ASCII as an upper-case \uXXXX escape.
 */
export function toQmpJson(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return quoteString(value);
    case 'number':
      return formatNumber(value);
    case 'bigint':
      return value.toString();
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      if (value === null) return 'null';
      if (value instanceof JsonFloat) return formatNumber(value.value);
      return Array.isArray(value) ? arrayText(value) : objectText(value as Record<string, unknown>);
    default:
      return 'null';
  }
}

// Built by concatenation: V8 joins the pieces as ropes, flattened once when the reply is written.
function arrayText(items: unknown[]): string {
  if (items.length === 0) return '[]';
  let text = '[' + toQmpJson(items[0]);
  for (let i = 1; i < items.length; i++) text += ', ' + toQmpJson(items[i]);
  return text + ']';
}

function objectText(object: Record<string, unknown>): string {
  let text = '{';
  for (const { key, prefix } of printOrder(object)) {
    const value = object[key];
    if (value === undefined) continue;
    if (text.length > 1) text += ', ';
    text += prefix + toQmpJson(value);
  }
  return text + '}';
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
