import { describe, expect, it } from 'vitest';
import { JsonStream } from '../../../src/qmp/json-stream.ts';
import { qdictKeyOrder } from '../../../src/qmp/qdict-order.ts';
import { toQmpJson } from '../../../src/qmp/wire.ts';

// Expected texts are what QEMU 7.2.22 printed for the same values (see test/protocol).

describe('toQmpJson: QEMU 7.2 output formatting', () => {
  it('orders object keys as QEMU hashes them, not as inserted', () => {
    expect(toQmpJson({ major: 7, minor: 2, micro: 22 })).toBe('{"micro": 22, "minor": 2, "major": 7}');
    expect(toQmpJson({ class: 'GenericError', desc: 'x' })).toBe('{"class": "GenericError", "desc": "x"}');
  });

  it('prints each shape of object in its own order, however often and in whatever mix it repeats', () => {
    const version = '{"micro": 22, "minor": 2, "major": 7}';
    const reply = toQmpJson({ return: [{ major: 7, minor: 2, micro: 22 }, { micro: 22, major: 7 }, { major: 7, minor: 2, micro: 22 }, {}] });
    expect(reply).toBe(`{"return": [${version}, {"micro": 22, "major": 7}, ${version}, {}]}`);
    const [first, second] = qdictKeyOrder(['a\u0000b', 'c']);
    const members: Record<string, string> = { 'a\u0000b': '"a\\u0000b": 1', c: `"c": ${version}` };
    expect(toQmpJson({ 'a\u0000b': 1, c: { major: 7, minor: 2, micro: 22, skipped: undefined } })).toBe(
      `{${members[first!]}, ${members[second!]}}`,
    );
  });

  it('prints doubles as %.17g and integers as integers', () => {
    expect(toQmpJson([1, 2.5, 1e300, -0, 2 ** 64, 12345678901234567890n])).toBe(
      '[1, 2.5, 1.0000000000000001e+300, -0, 1.8446744073709552e+19, 12345678901234567890]',
    );
  });

  it('escapes everything outside printable ASCII as upper-case \\uXXXX', () => {
    expect(toQmpJson('é\u0001\u007f😀"\\/')).toBe('"\\u00E9\\u0001\\u007F\\uD83D\\uDE00\\"\\\\/"');
  });
});

describe('JsonStream: framing', () => {
  const values = (stream: JsonStream, text: string) => {
    stream.push(Buffer.from(text));
    const items = [];
    for (let item = stream.next(); item !== undefined; item = stream.next()) items.push(item);
    return items;
  };

  it('joins a value split across chunks and splits several values in one chunk', () => {
    const stream = new JsonStream();
    expect(values(stream, '{"execute": "qu')).toEqual([]);
    expect(values(stream, 'ery-version"}{"a": [1')).toEqual([{ kind: 'value', value: { execute: 'query-version' } }]);
    expect(values(stream, ', 2]}')).toEqual([{ kind: 'value', value: { a: [1, 2] } }]);
  });

  it('reports the first parse error of a value and recovers at the next one', () => {
    const stream = new JsonStream();
    expect(values(stream, '{"a": }{"b": 1}')).toEqual([
      { kind: 'error', message: 'JSON parse error, expecting value' },
      { kind: 'value', value: { b: 1 } },
    ]);
  });

  it('applies its limits', () => {
    const stream = new JsonStream({ maxNesting: 3 });
    expect(values(stream, '[[[[')[0]).toEqual({ kind: 'error', message: 'JSON nesting depth limit exceeded' });
  });

  it('parses only as far as asked: the rest waits as bytes', () => {
    const stream = new JsonStream();
    stream.push(Buffer.from('1 2 3'));
    expect(stream.next()).toEqual({ kind: 'value', value: 1 });
    expect(stream.unreadBytes).toBe(3);
    expect(stream.next()).toEqual({ kind: 'value', value: 2 });
    expect(stream.next()).toBeUndefined();
    expect(values(stream, ' ')).toEqual([{ kind: 'value', value: 3 }]);
  });

  it('keeps a token split over many chunks intact', () => {
    const stream = new JsonStream();
    const text = '{"id": "' + 'abc'.repeat(1000) + '\\u00e9"}';
    const items = [];
    for (let i = 0; i < text.length; i += 7) items.push(...values(stream, text.slice(i, i + 7)));
    expect(items).toEqual([{ kind: 'value', value: { id: 'abc'.repeat(1000) + '\u00e9' } }]);
  });
});
