/**
 * A JSON number QEMU keeps as a double: one written with a fraction or an
 * exponent (65536.0, 6.5536e4), or an integer beyond uint64. QEMU's integer
 * parameters refuse these even when the value is whole, so the parsers hand
 * them over wrapped; integers stay plain numbers (bigints beyond 2^53).
 */
export class JsonFloat {
  constructor(readonly value: number) {}
}

/** An integer as the parsers and the visitor hand it over: a number where exact, else a bigint. */
export function jsonInteger(value: bigint): number | bigint {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

/** A parsed JSON object (not an array, null or a wrapped float). */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof JsonFloat);
}
