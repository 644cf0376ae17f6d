import { JsonFloat } from './json-value.ts';

/**
 * Parses one JSON value the way QEMU reads a JSON option argument
 * (`-blockdev '{...}'`, a `json:` filename): standard JSON plus single-quoted strings (with \'),
 * duplicate keys refused, and QEMU 7.2's error texts for the common mistakes
 * ("JSON parse error, premature EOI", "... expecting value", "Expecting at
 * most one JSON value", ...). Integers become numbers (exact up to 2^53);
 * numbers with a fraction or an exponent become JsonFloat (QEMU's doubles).
 */
/** A JSON argument QEMU's parser would refuse; the message is QEMU's. */
export class JsonArgumentError extends Error {
  override readonly name = 'JsonArgumentError';
}

export function parseJsonArgument(text: string): unknown {
  const parser = new JsonParser(text);
  const value = parser.value();
  parser.skipSpace();
  if (!parser.atEnd()) throw new JsonArgumentError('Expecting at most one JSON value');
  return value;
}

const fail = (reason: string): never => {
  throw new JsonArgumentError(`JSON parse error, ${reason}`);
};

const ESCAPES: Record<string, string> = { '"': '"', "'": "'", '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
const KEYWORDS: Record<string, unknown> = { true: true, false: false, null: null };
const NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/;
/** Characters that end a bad token when quoting it in "stray '...'". */
const TOKEN_END = /[\s,:[\]{}]/;

class JsonParser {
  private position = 0;

  constructor(private readonly text: string) {}

  atEnd(): boolean {
    return this.position >= this.text.length;
  }

  skipSpace(): void {
    while (!this.atEnd() && /\s/.test(this.text[this.position]!)) this.position++;
  }

  value(): unknown {
    this.skipSpace();
    if (this.atEnd()) return fail('premature EOI');
    const char = this.text[this.position]!;
    if (char === '{') return this.object();
    if (char === '[') return this.list();
    if (char === '"' || char === "'") return this.string();
    if (/[a-z]/.test(char)) return this.keyword();
    if (/[-\d]/.test(char)) return this.number();
    if (char === ',' || char === ':' || char === '}' || char === ']') return fail('expecting value');
    return this.stray();
  }

  private object(): Record<string, unknown> {
    const object: Record<string, unknown> = {};
    this.position++;
    if (this.peekAfterSpace() === '}') return this.consume(object);
    for (;;) {
      this.skipSpace();
      if (this.atEnd()) fail('premature EOI');
      const first = this.text[this.position];
      if (first !== '"' && first !== "'") {
        if (first === ',' || first === '}') fail('expecting value');
        this.value();
        fail('key is not a string in object');
      }
      const key = this.string();
      if (this.peekAfterSpace() !== ':') this.expectMore('missing : in object pair');
      this.position++;
      const member = this.value();
      if (Object.hasOwn(object, key)) fail('duplicate key');
      object[key] = member;
      const separator = this.peekAfterSpace();
      if (separator === '}') return this.consume(object);
      if (separator !== ',') this.expectMore('expected separator in dict');
      this.position++;
    }
  }

  private list(): unknown[] {
    const list: unknown[] = [];
    this.position++;
    if (this.peekAfterSpace() === ']') return this.consume(list);
    for (;;) {
      list.push(this.value());
      const separator = this.peekAfterSpace();
      if (separator === ']') return this.consume(list);
      if (separator !== ',') this.expectMore('expected separator in list');
      this.position++;
    }
  }

  private string(): string {
    const start = this.position;
    const quote = this.text[this.position++];
    let result = '';
    while (!this.atEnd()) {
      const char = this.text[this.position++]!;
      if (char === quote) return result;
      if (char !== '\\') {
        result += char;
        continue;
      }
      const escape = this.text[this.position++] ?? '';
      if (escape === 'u') {
        const hex = this.text.slice(this.position, this.position + 4);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail(`\\u${hex} is not a valid Unicode character`);
        result += String.fromCharCode(parseInt(hex, 16));
        this.position += 4;
      } else if (escape in ESCAPES) {
        result += ESCAPES[escape];
      } else {
        fail('invalid escape sequence in string');
      }
    }
    return fail(`stray '${this.text.slice(start)}'`);
  }

  private keyword(): unknown {
    const word = /^[a-z]+/.exec(this.text.slice(this.position))![0];
    if (!(word in KEYWORDS)) fail(`invalid keyword '${word}'`);
    this.position += word.length;
    return KEYWORDS[word];
  }

  private number(): number | JsonFloat {
    const match = NUMBER.exec(this.text.slice(this.position));
    const end = this.position + (match?.[0].length ?? 0);
    if (!match || (end < this.text.length && !TOKEN_END.test(this.text[end]!))) return this.stray();
    this.position = end;
    return /[.eE]/.test(match[0]) ? new JsonFloat(Number(match[0])) : Number(match[0]);
  }

  /** Garbage the lexer cannot make a token of, quoted up to the next delimiter. */
  private stray(): never {
    let end = this.position + 1;
    while (end < this.text.length && !TOKEN_END.test(this.text[end]!)) end++;
    return fail(`stray '${this.text.slice(this.position, end)}'`);
  }

  private peekAfterSpace(): string | undefined {
    this.skipSpace();
    return this.text[this.position];
  }

  /** At end of input every "expected X" becomes QEMU's "premature EOI". */
  private expectMore(reason: string): never {
    return fail(this.atEnd() ? 'premature EOI' : reason);
  }

  private consume<T>(value: T): T {
    this.position++;
    return value;
  }
}
