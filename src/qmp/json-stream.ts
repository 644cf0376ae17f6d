/**
 * QMP input framing with QEMU 7.2's semantics: a lexer that turns bytes into
 * tokens (recovering after bad input at the next structural character), a
 * streamer that cuts the token stream into top-level values by counting
 * braces and brackets, and a parser whose error texts are QEMU's.
 */

import { JsonFloat, jsonInteger } from './json-value.ts';
import { MODIFIED_UTF8_NUL } from '../c-text.ts';

export type StreamItem = { kind: 'value'; value: unknown } | { kind: 'error'; message: string };

export interface JsonLimits {
  maxTokenBytes: number;
  maxTokenCount: number;
  maxNesting: number;
}

const QEMU_LIMITS: JsonLimits = { maxTokenBytes: 64 << 20, maxTokenCount: 2 << 20, maxNesting: 1024 };

type TokenType = '{' | '}' | '[' | ']' | ':' | ',' | 'string' | 'integer' | 'float' | 'keyword';

const enum Lex {
  Start,
  Recovery,
  String,
  StringEscape,
  Minus,
  Zero,
  Integer,
  Mantissa,
  MantissaDigits,
  Exponent,
  ExponentSign,
  ExponentDigits,
  Keyword,
}

const STRUCTURAL = new Set(['{', '}', '[', ']', ':', ','].map((c) => c.charCodeAt(0)));
const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
const isWhitespace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;

/** Where the lexer stops skipping after an error: structure, control characters, impossible UTF-8 bytes. */
const resynchronisesAt = (c: number) => STRUCTURAL.has(c) || (c < 0x20 && c !== 0x09) || c >= 0xfe;

/** A received chunk the pending value's tokens may still point into. */
interface HeldChunk {
  /** Stream offset of bytes[0]. */
  start: number;
  bytes: Buffer;
}

const TOKEN_CODES: TokenType[] = ['{', '}', '[', ']', ':', ',', 'string', 'integer', 'float', 'keyword'];

/**
 * The tokens of the value being collected: types and stream offsets in typed
 * arrays, the bytes themselves left in the received chunks.
 */
class TokenList {
  length = 0;
  private types = new Uint8Array(64);
  private bounds = new Float64Array(128);

  push(type: TokenType, start: number, end: number): void {
    if (this.length === this.types.length) {
      const types = new Uint8Array(this.types.length * 2);
      types.set(this.types);
      this.types = types;
      const bounds = new Float64Array(this.bounds.length * 2);
      bounds.set(this.bounds);
      this.bounds = bounds;
    }
    this.types[this.length] = TOKEN_CODES.indexOf(type);
    this.bounds[2 * this.length] = start;
    this.bounds[2 * this.length + 1] = end;
    this.length++;
  }

  type(index: number): TokenType {
    return TOKEN_CODES[this.types[index]!]!;
  }

  start(index: number): number {
    return this.bounds[2 * index]!;
  }

  end(index: number): number {
    return this.bounds[2 * index + 1]!;
  }

  clear(): void {
    this.length = 0;
    if (this.types.length > 64) {
      this.types = new Uint8Array(64);
      this.bounds = new Float64Array(128);
    }
  }
}

/**
 * Bytes in, QMP values (or QEMU's error texts) out, one at a time: push() only
 * stores a chunk; next() lexes just far enough to produce the next item, so a
 * client's input waits as bytes until the session is ready for it.
 */
export class JsonStream {
  private readonly limits: JsonLimits;
  private state = Lex.Start;
  private quote = 0;
  private readonly chunks: HeldChunk[] = [];
  /** Index in chunks of the chunk holding `position`. */
  private readChunk = 0;
  /** Stream offset of the next byte to lex. */
  private position = 0;
  private received = 0;
  private tokenStart = 0;
  private tokenLength = 0;
  private readonly tokens = new TokenList();
  private tokensSize = 0;
  private braces = 0;
  private brackets = 0;
  private readonly output: StreamItem[] = [];

  constructor(limits: Partial<JsonLimits> = {}) {
    this.limits = { ...QEMU_LIMITS, ...limits };
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push({ start: this.received, bytes: chunk });
    this.received += chunk.length;
  }

  /** Bytes pushed that have not been lexed yet. */
  get unreadBytes(): number {
    return this.received - this.position;
  }

  /** The next complete value or error, or undefined when the input so far holds none. */
  next(): StreamItem | undefined {
    while (this.output.length === 0 && this.position < this.received) {
      const chunk = this.chunks[this.readChunk]!;
      const bytes = chunk.bytes;
      let i = this.position - chunk.start;
      while (i < bytes.length && this.output.length === 0) {
        this.position = chunk.start + i;
        this.feed(bytes[i]!);
        i++;
      }
      this.position = chunk.start + i;
      if (i === bytes.length) this.readChunk++;
    }
    this.releaseChunks();
    return this.output.shift();
  }

  /** Drops the chunks that neither unread input nor a pending token points into. */
  private releaseChunks(): void {
    this.dropChunksBefore(this.tokens.length > 0 ? this.tokens.start(0) : this.state === Lex.Start || this.state === Lex.Recovery ? this.position : this.tokenStart);
  }

  private dropChunksBefore(offset: number): void {
    let drop = 0;
    while (drop < this.readChunk && this.chunks[drop]!.start + this.chunks[drop]!.bytes.length <= offset) drop++;
    if (drop === 0) return;
    this.chunks.splice(0, drop);
    this.readChunk -= drop;
  }

  /**
   * A token's bytes for the parser, which asks for each token once and in order:
   * the chunks wholly before its end can go before the token is decoded, so a
   * huge string is never held as received chunks, joined bytes and text at once.
   */
  private takeToken(index: number): Buffer {
    const bytes = this.bytesAt(this.tokens.start(index), this.tokens.end(index));
    this.dropChunksBefore(this.tokens.end(index));
    return bytes;
  }

  /** Stream bytes [start, end) as one Buffer (a view when they lie in one chunk). */
  private bytesAt(start: number, end: number): Buffer {
    let index = 0;
    while (this.chunks[index]!.start + this.chunks[index]!.bytes.length <= start) index++;
    const first = this.chunks[index]!;
    if (end <= first.start + first.bytes.length) return first.bytes.subarray(start - first.start, end - first.start);
    const parts: Buffer[] = [];
    for (let at = start; at < end; index++) {
      const chunk = this.chunks[index]!;
      const to = Math.min(end, chunk.start + chunk.bytes.length);
      parts.push(chunk.bytes.subarray(at - chunk.start, to - chunk.start));
      at = to;
    }
    return Buffer.concat(parts, end - start);
  }

  private feed(c: number): void {
    // Each state either consumes c, or ends a token and lets c be looked at again from Start.
    for (;;) {
      switch (this.state) {
        case Lex.Start:
          return this.start(c);
        case Lex.Recovery:
          if (!resynchronisesAt(c)) return;
          this.state = Lex.Start;
          continue;
        case Lex.String:
          if (c === this.quote) return this.finishToken('string', 1);
          if (c === 0x5c) return this.extend(Lex.StringEscape);
          if (c < 0x20 || c >= 0xfe) return this.lexError();
          return this.extend(Lex.String);
        case Lex.StringEscape:
          if (c < 0x20 || c >= 0xfe) return this.lexError();
          return this.extend(Lex.String);
        case Lex.Minus:
          if (c === 0x30) return this.extend(Lex.Zero);
          if (isDigit(c)) return this.extend(Lex.Integer);
          return this.lexError();
        case Lex.Zero:
          // As in QEMU's lexer, only a fraction continues a leading zero: "0e0" is 0 then a keyword.
          if (isDigit(c)) return this.lexError();
          if (c === 0x2e) return this.extend(Lex.Mantissa);
          this.finishToken('integer', 0);
          continue;
        case Lex.Integer:
          if (isDigit(c)) return this.extend(Lex.Integer);
          if (c === 0x2e) return this.extend(Lex.Mantissa);
          if (c === 0x65 || c === 0x45) return this.extend(Lex.Exponent);
          this.finishToken('integer', 0);
          continue;
        case Lex.Mantissa:
          if (isDigit(c)) return this.extend(Lex.MantissaDigits);
          return this.lexError();
        case Lex.MantissaDigits:
          if (isDigit(c)) return this.extend(Lex.MantissaDigits);
          if (c === 0x65 || c === 0x45) return this.extend(Lex.Exponent);
          this.finishToken('float', 0);
          continue;
        case Lex.Exponent:
          if (isDigit(c)) return this.extend(Lex.ExponentDigits);
          if (c === 0x2b || c === 0x2d) return this.extend(Lex.ExponentSign);
          return this.lexError();
        case Lex.ExponentSign:
          if (isDigit(c)) return this.extend(Lex.ExponentDigits);
          return this.lexError();
        case Lex.ExponentDigits:
          if (isDigit(c)) return this.extend(Lex.ExponentDigits);
          this.finishToken('float', 0);
          continue;
        case Lex.Keyword:
          if (c >= 0x61 && c <= 0x7a) return this.extend(Lex.Keyword);
          this.finishToken('keyword', 0);
          continue;
      }
    }
  }

  private start(c: number): void {
    if (isWhitespace(c)) return;
    this.tokenStart = this.position;
    this.tokenLength = 0;
    if (STRUCTURAL.has(c)) {
      this.tokenLength = 1;
      return this.emitToken(String.fromCharCode(c) as TokenType, this.position + 1);
    }
    if (c === 0x22 || c === 0x27) {
      this.quote = c;
      return this.extend(Lex.String);
    }
    if (c === 0x2d) return this.extend(Lex.Minus);
    if (c === 0x30) return this.extend(Lex.Zero);
    if (isDigit(c)) return this.extend(Lex.Integer);
    if (c >= 0x61 && c <= 0x7a) return this.extend(Lex.Keyword);
    return this.lexError();
  }

  private extend(next: Lex): void {
    this.state = next;
    this.tokenLength++;
    if (this.tokenLength > this.limits.maxTokenBytes) {
      this.state = Lex.Recovery;
      this.fail('JSON token size limit exceeded');
    }
  }

  /** Ends the token before the current byte, or with it (`withCurrent` 1: a closing quote). */
  private finishToken(type: TokenType, withCurrent: 0 | 1): void {
    this.state = Lex.Start;
    this.tokenLength += withCurrent;
    this.emitToken(type, this.position + withCurrent);
  }

  /** A byte no token can continue with: report the token so far with it, then skip to a resync point. */
  private lexError(): void {
    const raw = this.bytesAt(this.tokenStart, this.position + 1);
    const nul = raw.indexOf(0);
    const text = textAsQemuPrintsIt(nul >= 0 ? raw.subarray(0, nul) : raw);
    this.state = Lex.Recovery;
    this.fail(`JSON parse error, stray '${text}'`);
  }

  private emitToken(type: TokenType, end: number): void {
    if (type === '{') this.braces++;
    else if (type === '}') this.braces--;
    else if (type === '[') this.brackets++;
    else if (type === ']') this.brackets--;
    this.tokens.push(type, this.tokenStart, end);
    this.tokensSize += this.tokenLength;
    if (this.tokensSize > this.limits.maxTokenBytes) return this.fail('JSON token size limit exceeded');
    if (this.tokens.length > this.limits.maxTokenCount) return this.fail('JSON token count limit exceeded');
    if (this.braces + this.brackets > this.limits.maxNesting) return this.fail('JSON nesting depth limit exceeded');
    if (this.braces < 0 || this.brackets < 0 || (this.braces === 0 && this.brackets === 0)) {
      try {
        this.output.push({ kind: 'value', value: new TokenParser(this.tokens, (i) => this.takeToken(i)).parse() });
      } catch (error) {
        if (!(error instanceof JsonParseError)) throw error;
        this.output.push({ kind: 'error', message: `JSON parse error, ${error.message}` });
      }
      this.resetValue();
    }
  }

  private fail(message: string): void {
    this.resetValue();
    this.output.push({ kind: 'error', message });
  }

  private resetValue(): void {
    this.tokens.clear();
    this.tokensSize = 0;
    this.braces = 0;
    this.brackets = 0;
  }
}

class JsonParseError extends Error {}

const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);
const UINT64_MAX = (1n << 64n) - 1n;
// A U+FEFF is a character like any other inside a JSON string, not a byte-order mark to drop.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Recursive descent over one value's tokens; the first error wins, as in QEMU's parser. */
class TokenParser {
  private position = 0;
  constructor(
    private readonly tokens: TokenList,
    private readonly textOf: (index: number) => Buffer,
  ) {}

  parse(): unknown {
    return this.value();
  }

  private peek(): TokenType {
    if (this.position >= this.tokens.length) throw new JsonParseError('premature EOI');
    return this.tokens.type(this.position);
  }

  private next(): TokenType {
    const type = this.peek();
    this.position++;
    return type;
  }

  private value(): unknown {
    const type = this.peek();
    switch (type) {
      case '{':
        return this.object();
      case '[':
        return this.array();
      case 'string':
        return decodeString(this.textOf(this.position++));
      case 'integer':
        return decodeInteger(this.textOf(this.position++).toString('latin1'));
      case 'float':
        return new JsonFloat(Number(this.textOf(this.position++).toString('latin1')));
      case 'keyword':
        return decodeKeyword(this.textOf(this.position++).toString('latin1'));
      default:
        throw new JsonParseError('expecting value');
    }
  }

  private object(): Record<string, unknown> {
    this.next();
    const result: Record<string, unknown> = {};
    if (this.peek() === '}') {
      this.position++;
      return result;
    }
    for (;;) {
      this.pair(result);
      const separator = this.next();
      if (separator === '}') return result;
      if (separator !== ',') throw new JsonParseError('expected separator in dict');
    }
  }

  private pair(into: Record<string, unknown>): void {
    const key = this.value();
    if (typeof key !== 'string') throw new JsonParseError('key is not a string in object');
    if (this.next() !== ':') throw new JsonParseError('missing : in object pair');
    const value = this.value();
    if (Object.prototype.hasOwnProperty.call(into, key)) throw new JsonParseError('duplicate key');
    Object.defineProperty(into, key, { value, enumerable: true, writable: true, configurable: true });
  }

  private array(): unknown[] {
    this.next();
    const result: unknown[] = [];
    if (this.peek() === ']') {
      this.position++;
      return result;
    }
    for (;;) {
      result.push(this.value());
      const separator = this.next();
      if (separator === ']') return result;
      if (separator !== ',') throw new JsonParseError('expected separator in list');
    }
  }
}

function decodeKeyword(text: string): boolean | null {
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (text === 'null') return null;
  throw new JsonParseError(`invalid keyword '${text}'`);
}

/** int64 when it fits, else uint64, else a double: QEMU's order of attempts. */
function decodeInteger(text: string): number | bigint | JsonFloat {
  const value = BigInt(text);
  if (value >= INT64_MIN && value <= INT64_MAX) return jsonInteger(value);
  if (value > 0n && value <= UINT64_MAX) return value;
  return new JsonFloat(Number(text));
}

const SIMPLE_ESCAPES: Record<string, string> = {
  '"': '"',
  "'": "'",
  '\\': '\\',
  '/': '/',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
};

/** A string token, quotes included, decoded as QEMU's parser does: left to right, first error wins. */
function decodeString(token: Buffer): string {
  const bodyEnd = token.length - 1;
  let result = '';
  let runStart = 1;
  for (let i = 1; i < bodyEnd; i++) {
    if (token[i] !== 0x5c) continue;
    result += decodeUtf8(token.subarray(runStart, i));
    const escape = String.fromCharCode(token[i + 1]!);
    if (escape === 'u') {
      const { text, length } = decodeUnicodeEscape(token, i);
      result += text;
      i += length - 1;
    } else {
      const simple = SIMPLE_ESCAPES[escape];
      if (simple === undefined) throw new JsonParseError('invalid escape sequence in string');
      result += simple;
      i += 1;
    }
    runStart = i + 1;
  }
  return result + decodeUtf8(token.subarray(runStart, bodyEnd));
}

/** Four hex digits at `offset`, or -1 when any of them (or the token) is missing. */
function hex4(token: Buffer, offset: number): number {
  if (offset + 4 > token.length) return -1;
  const digits = token.subarray(offset, offset + 4).toString('latin1');
  return /^[0-9a-fA-F]{4}$/.test(digits) ? parseInt(digits, 16) : -1;
}

/** What QEMU accepts as a character: in range, no surrogate, none of Unicode's 66 noncharacters. */
function isValidCodePoint(cp: number): boolean {
  if (cp < 0 || cp > 0x10ffff) return false;
  if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) return false;
  return cp < 0xd800 || cp > 0xdfff;
}

/**
 * \uXXXX, or a surrogate pair of two. A bad one is quoted in the error as QEMU
 * quotes it: the backslash and the four characters after "\u", cut at the token's end.
 */
function decodeUnicodeEscape(token: Buffer, at: number): { text: string; length: number } {
  let cp = hex4(token, at + 2);
  let length = 6;
  if (cp >= 0xd800 && cp <= 0xdbff && token[at + 6] === 0x5c && token[at + 7] === 0x75) {
    const trailing = hex4(token, at + 8);
    if (trailing >= 0xdc00 && trailing <= 0xdfff) {
      cp = 0x10000 + ((cp & 0x3ff) << 10) + (trailing & 0x3ff);
      length = 12;
    } else {
      cp = -1;
    }
  }
  if (!isValidCodePoint(cp)) {
    const shown = token.subarray(at, Math.min(at + length, token.length)).toString('latin1');
    throw new JsonParseError(`${shown} is not a valid Unicode character`);
  }
  return { text: String.fromCodePoint(cp), length };
}

/** The smallest code point of a sequence of 2..6 bytes: a smaller one is overlong. */
const MIN_CODE_POINT = [0x80, 0x800, 0x10000, 0x200000, 0x4000000];

/**
 * Raw bytes as a QEMU reply shows them (its JSON writer decodes with mod_utf8_codepoint):
 * a lead byte takes the continuation bytes it announces, up to the first that is not one,
 * and a sequence that is cut short, overlong, a surrogate, past U+10FFFF or a noncharacter is one U+FFFD.
 * (A WHATWG decoder would give one U+FFFD per byte of some of these.)
 */
function textAsQemuPrintsIt(bytes: Buffer): string {
  let text = '';
  for (let at = 0; at < bytes.length; ) {
    const lead = bytes[at++]!;
    let cp: number;
    if (lead < 0x80) cp = lead;
    else if (lead >= 0xfe || (lead & 0x40) === 0) cp = -1;
    else {
      let length = 0;
      let mask = 0x80;
      for (; lead & mask; mask >>= 1) length++;
      cp = lead & (mask - 1);
      for (let i = 1; i < length; i++) {
        const next = bytes[at];
        if (next === undefined || (next & 0xc0) !== 0x80) {
          cp = -1;
          break;
        }
        at++;
        cp = cp * 64 + (next & 0x3f);
      }
      const nonCharacter = (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe;
      const surrogate = cp >= 0xd800 && cp <= 0xdfff;
      if (cp > 0x10ffff || nonCharacter || surrogate || (cp >= 0 && cp < MIN_CODE_POINT[length - 2]! && !(cp === 0 && length === 2))) cp = -1;
    }
    text += cp < 0 ? '\uFFFD' : String.fromCodePoint(cp);
  }
  return text;
}

/** QEMU reads modified UTF-8: strict UTF-8, plus the overlong pair C0 80 for U+0000. */
function decodeUtf8(bytes: Buffer): string {
  let text = '';
  let start = 0;
  for (let nul = bytes.indexOf(MODIFIED_UTF8_NUL); nul >= 0; nul = bytes.indexOf(MODIFIED_UTF8_NUL, start)) {
    text += decodeStrictUtf8(bytes.subarray(start, nul)) + '\0';
    start = nul + 2;
  }
  return text + decodeStrictUtf8(bytes.subarray(start));
}

/** U+FDD0..U+FDEF and every U+xxFFFE / U+xxFFFF, as UTF-16. */
const NONCHARACTER = /[\uFDD0-\uFDEF\uFFFE\uFFFF]|[\uD83F\uD87F\uD8BF\uD8FF\uD93F\uD97F\uD9BF\uD9FF\uDA3F\uDA7F\uDABF\uDAFF\uDB3F\uDB7F\uDBBF\uDBFF][\uDFFE\uDFFF]/;

function decodeStrictUtf8(bytes: Buffer): string {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new JsonParseError('invalid UTF-8 sequence in string');
  }
  if (NONCHARACTER.test(text)) throw new JsonParseError('invalid UTF-8 sequence in string');
  return text;
}
