/**
 * QMP input framing with QEMU 7.2's semantics: a lexer that turns bytes into
 * tokens (recovering after bad input at the next structural character), a
 * streamer that cuts the token stream into top-level values by counting
 * braces and brackets, and a parser whose error texts are QEMU's.
 */

import { JsonFloat, jsonInteger } from './json-value.ts';

export type StreamItem = { kind: 'value'; value: unknown } | { kind: 'error'; message: string };

export interface JsonLimits {
  maxTokenBytes: number;
  maxTokenCount: number;
  maxNesting: number;
}

const QEMU_LIMITS: JsonLimits = { maxTokenBytes: 64 << 20, maxTokenCount: 2 << 20, maxNesting: 1024 };

type TokenType = '{' | '}' | '[' | ']' | ':' | ',' | 'string' | 'integer' | 'float' | 'keyword';
interface Token {
  type: TokenType;
  text: Buffer | string;
}

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

export class JsonStream {
  private readonly limits: JsonLimits;
  private state = Lex.Start;
  private quote = 0;
  private tokenBytes: number[] = [];
  private tokenLength = 0;
  private tokens: Token[] = [];
  private tokensSize = 0;
  private braces = 0;
  private brackets = 0;
  private output: StreamItem[] = [];

  constructor(limits: Partial<JsonLimits> = {}) {
    this.limits = { ...QEMU_LIMITS, ...limits };
  }

  push(chunk: Buffer): StreamItem[] {
    for (let i = 0; i < chunk.length; i++) this.feed(chunk[i]!);
    return this.take();
  }

  /** End of input: QEMU flushes a pending token and discards an unfinished value. */
  end(): StreamItem[] {
    this.feed(0x0a);
    this.tokens = [];
    this.tokensSize = 0;
    this.braces = this.brackets = 0;
    this.state = Lex.Start;
    return this.take();
  }

  private take(): StreamItem[] {
    const items = this.output;
    this.output = [];
    return items;
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
          if (c === this.quote) return this.finishToken('string', c);
          if (c === 0x5c) return this.extend(c, Lex.StringEscape);
          if (c < 0x20 || c >= 0xfe) return this.lexError(c);
          return this.extend(c, Lex.String);
        case Lex.StringEscape:
          if (c < 0x20 || c >= 0xfe) return this.lexError(c);
          return this.extend(c, Lex.String);
        case Lex.Minus:
          if (c === 0x30) return this.extend(c, Lex.Zero);
          if (isDigit(c)) return this.extend(c, Lex.Integer);
          return this.lexError(c);
        case Lex.Zero:
          if (isDigit(c) || c >= 0x80) return this.lexError(c);
          if (c === 0x2e) return this.extend(c, Lex.Mantissa);
          if (c === 0x65 || c === 0x45) return this.extend(c, Lex.Exponent);
          this.finishToken('integer');
          continue;
        case Lex.Integer:
          if (isDigit(c)) return this.extend(c, Lex.Integer);
          if (c >= 0x80) return this.lexError(c);
          if (c === 0x2e) return this.extend(c, Lex.Mantissa);
          if (c === 0x65 || c === 0x45) return this.extend(c, Lex.Exponent);
          this.finishToken('integer');
          continue;
        case Lex.Mantissa:
          if (isDigit(c)) return this.extend(c, Lex.MantissaDigits);
          return this.lexError(c);
        case Lex.MantissaDigits:
          if (isDigit(c)) return this.extend(c, Lex.MantissaDigits);
          if (c >= 0x80) return this.lexError(c);
          if (c === 0x65 || c === 0x45) return this.extend(c, Lex.Exponent);
          this.finishToken('float');
          continue;
        case Lex.Exponent:
          if (isDigit(c)) return this.extend(c, Lex.ExponentDigits);
          if (c === 0x2b || c === 0x2d) return this.extend(c, Lex.ExponentSign);
          return this.lexError(c);
        case Lex.ExponentSign:
          if (isDigit(c)) return this.extend(c, Lex.ExponentDigits);
          return this.lexError(c);
        case Lex.ExponentDigits:
          if (isDigit(c)) return this.extend(c, Lex.ExponentDigits);
          if (c >= 0x80) return this.lexError(c);
          this.finishToken('float');
          continue;
        case Lex.Keyword:
          if (c >= 0x61 && c <= 0x7a) return this.extend(c, Lex.Keyword);
          if (c >= 0x80) return this.lexError(c);
          this.finishToken('keyword');
          continue;
      }
    }
  }

  private start(c: number): void {
    if (isWhitespace(c)) return;
    if (STRUCTURAL.has(c)) {
      this.tokenBytes = [];
      this.tokenLength = 1;
      return this.emitToken({ type: String.fromCharCode(c) as TokenType, text: String.fromCharCode(c) });
    }
    if (c === 0x22 || c === 0x27) {
      this.quote = c;
      return this.extend(c, Lex.String);
    }
    if (c === 0x2d) return this.extend(c, Lex.Minus);
    if (c === 0x30) return this.extend(c, Lex.Zero);
    if (isDigit(c)) return this.extend(c, Lex.Integer);
    if (c >= 0x61 && c <= 0x7a) return this.extend(c, Lex.Keyword);
    return this.lexError(c);
  }

  private extend(c: number, next: Lex): void {
    this.state = next;
    this.tokenLength++;
    if (this.tokenLength > this.limits.maxTokenBytes) {
      this.tokenBytes = [];
      this.tokenLength = 0;
      this.state = Lex.Recovery;
      this.fail('JSON token size limit exceeded');
      return;
    }
    this.tokenBytes.push(c);
  }

  private finishToken(type: TokenType, closing?: number): void {
    if (closing !== undefined) this.tokenBytes.push(closing);
    const text = Buffer.from(this.tokenBytes);
    this.tokenBytes = [];
    this.state = Lex.Start;
    this.emitToken({ type, text });
    this.tokenLength = 0;
  }

  /** A character no token can continue with: report the token so far, then skip to a resync point. */
  private lexError(c: number): void {
    this.tokenBytes.push(c);
    const raw = Buffer.from(this.tokenBytes);
    const nul = raw.indexOf(0);
    const text = (nul >= 0 ? raw.subarray(0, nul) : raw).toString('utf8');
    this.tokenBytes = [];
    this.tokenLength = 0;
    this.state = Lex.Recovery;
    this.fail(`JSON parse error, stray '${text}'`);
  }

  private emitToken(token: Token): void {
    if (token.type === '{') this.braces++;
    else if (token.type === '}') this.braces--;
    else if (token.type === '[') this.brackets++;
    else if (token.type === ']') this.brackets--;
    this.tokens.push(token);
    this.tokensSize += this.tokenLength;
    if (this.tokensSize > this.limits.maxTokenBytes) return this.fail('JSON token size limit exceeded');
    if (this.tokens.length > this.limits.maxTokenCount) return this.fail('JSON token count limit exceeded');
    if (this.braces + this.brackets > this.limits.maxNesting) return this.fail('JSON nesting depth limit exceeded');
    if (this.braces < 0 || this.brackets < 0 || (this.braces === 0 && this.brackets === 0)) {
      const tokens = this.tokens;
      this.resetValue();
      try {
        this.output.push({ kind: 'value', value: new TokenParser(tokens).parse() });
      } catch (error) {
        if (!(error instanceof JsonParseError)) throw error;
        this.output.push({ kind: 'error', message: `JSON parse error, ${error.message}` });
      }
    }
  }

  private fail(message: string): void {
    this.resetValue();
    this.output.push({ kind: 'error', message });
  }

  private resetValue(): void {
    this.tokens = [];
    this.tokensSize = 0;
    this.braces = 0;
    this.brackets = 0;
  }
}

class JsonParseError extends Error {}

const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);
const UINT64_MAX = (1n << 64n) - 1n;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Recursive descent over one value's tokens; the first error wins, as in QEMU's parser. */
class TokenParser {
  private position = 0;
  constructor(private readonly tokens: Token[]) {}

  parse(): unknown {
    return this.value();
  }

  private peek(): Token {
    const token = this.tokens[this.position];
    if (!token) throw new JsonParseError('premature EOI');
    return token;
  }

  private next(): Token {
    const token = this.peek();
    this.position++;
    return token;
  }

  private value(): unknown {
    const token = this.peek();
    switch (token.type) {
      case '{':
        return this.object();
      case '[':
        return this.array();
      case 'string':
        this.position++;
        return decodeString(token.text as Buffer);
      case 'integer':
        this.position++;
        return decodeInteger(token.text.toString());
      case 'float':
        this.position++;
        return new JsonFloat(Number(token.text.toString()));
      case 'keyword':
        this.position++;
        return decodeKeyword(token.text.toString());
      default:
        throw new JsonParseError('expecting value');
    }
  }

  private object(): Record<string, unknown> {
    this.next();
    const result: Record<string, unknown> = {};
    if (this.peek().type === '}') {
      this.position++;
      return result;
    }
    for (;;) {
      this.pair(result);
      const separator = this.next();
      if (separator.type === '}') return result;
      if (separator.type !== ',') throw new JsonParseError('expected separator in dict');
    }
  }

  private pair(into: Record<string, unknown>): void {
    const key = this.value();
    if (typeof key !== 'string') throw new JsonParseError('key is not a string in object');
    if (this.next().type !== ':') throw new JsonParseError('missing : in object pair');
    const value = this.value();
    if (Object.prototype.hasOwnProperty.call(into, key)) throw new JsonParseError('duplicate key');
    Object.defineProperty(into, key, { value, enumerable: true, writable: true, configurable: true });
  }

  private array(): unknown[] {
    this.next();
    const result: unknown[] = [];
    if (this.peek().type === ']') {
      this.position++;
      return result;
    }
    for (;;) {
      result.push(this.value());
      const separator = this.next();
      if (separator.type === ']') return result;
      if (separator.type !== ',') throw new JsonParseError('expected separator in list');
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

function decodeString(raw: Buffer): string {
  const body = raw.subarray(1, raw.length - 1);
  if (!body.includes(0x5c)) return decodeUtf8(body);
  let result = '';
  let runStart = 0;
  for (let i = 0; i < body.length; i++) {
    if (body[i] !== 0x5c) continue;
    result += decodeUtf8(body.subarray(runStart, i));
    const escape = String.fromCharCode(body[i + 1]!);
    if (escape === 'u') {
      const { text, length } = decodeUnicodeEscape(body, i);
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
  return result + decodeUtf8(body.subarray(runStart));
}

function decodeUnicodeEscape(body: Buffer, at: number): { text: string; length: number } {
  const hex = (offset: number) => {
    const digits = body.subarray(offset, offset + 4).toString('latin1');
    if (!/^[0-9a-fA-F]{4}$/.test(digits)) throw new JsonParseError('invalid hex escape sequence in string');
    return parseInt(digits, 16);
  };
  const first = hex(at + 2);
  const shown = body.subarray(at + 2, at + 6).toString('latin1');
  if (first >= 0xdc00 && first <= 0xdfff) throw new JsonParseError(`\\u${shown} is not a valid Unicode character`);
  if (first >= 0xd800 && first <= 0xdbff) {
    if (body[at + 6] !== 0x5c || body[at + 7] !== 0x75) throw new JsonParseError(`\\u${shown} is not a valid Unicode character`);
    const second = hex(at + 8);
    if (second < 0xdc00 || second > 0xdfff) throw new JsonParseError(`\\u${shown} is not a valid Unicode character`);
    return { text: String.fromCharCode(first, second), length: 12 };
  }
  return { text: String.fromCharCode(first), length: 6 };
}

const MODIFIED_UTF8_NUL = Buffer.from([0xc0, 0x80]);

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

function decodeStrictUtf8(bytes: Buffer): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new JsonParseError('invalid UTF-8 sequence in string');
  }
}
