/** JSON text written verbatim into a request: floats such as `65536.0`, integers beyond 2^53, bad escapes. */
export class RawJson {
  constructor(readonly text: string) {}
}

/** Like JSON.stringify, but RawJson values are written as they are and strings may hold lone surrogates as escapes. */
export function jsonText(value: unknown): string {
  if (value instanceof RawJson) return value.text;
  if (Array.isArray(value)) return `[${value.map(jsonText).join(', ')}]`;
  if (typeof value === 'object' && value !== null) {
    return `{${Object.entries(value).map(([key, member]) => `${JSON.stringify(key)}: ${jsonText(member)}`).join(', ')}}`;
  }
  if (typeof value === 'bigint') return value.toString();
  return JSON.stringify(value) ?? 'null';
}
