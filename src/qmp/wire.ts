import { JsonFloat } from './json-value.ts';
import { qdictKeyOrder } from './qdict-order.ts';

/**
 * Serialises a value exactly as QEMU 7.2's QMP monitor prints it: ", " and ": "
 * separators, object keys in QDict order, doubles as "%.17g", every character
 * outside printable ASCII as an upper-case \uXXXX escape.
 */
export function toQmpJson(value: unknown): string {
  const parts: string[] = [];
  write(value, parts);
  return parts.join('');
}

function write(value: unknown, out: string[]): void {
  switch (typeof value) {
    case 'string':
      out.push(quoteString(value));
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
        value.forEach((item, i) => {
          if (i > 0) out.push(', ');
          write(item, out);
        });
        out.push(']');
      } else {
        writeObject(value as Record<string, unknown>, out);
      }
      return;
    default:
      out.push('null');
  }
}

function writeObject(object: Record<string, unknown>, out: string[]): void {
  const keys = qdictKeyOrder(Object.keys(object).filter((key) => object[key] !== undefined));
  out.push('{');
  keys.forEach((key, i) => {
    if (i > 0) out.push(', ');
    out.push(quoteString(key), ': ');
    write(object[key], out);
  });
  out.push('}');
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
