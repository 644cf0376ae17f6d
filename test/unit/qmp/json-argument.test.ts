import { describe, expect, it } from 'vitest';
import { parseJsonArgument } from '../../../src/qmp/json-argument.ts';
import { JsonFloat } from '../../../src/qmp/json-value.ts';

describe('JSON option arguments', () => {
  it('parses objects, lists, numbers, keywords and both quote styles', () => {
    expect(parseJsonArgument(`{"driver": "null-co", "size": 17592186044416, "x": [1.5, true, null], 'y': 'it\\'s'}`)).toEqual({
      driver: 'null-co',
      size: 17592186044416,
      x: [new JsonFloat(1.5), true, null],
      y: "it's",
    });
    expect(parseJsonArgument('[65536, 65536.0, 6.5536e4, -0.0]')).toEqual([
      65536,
      new JsonFloat(65536),
      new JsonFloat(65536),
      new JsonFloat(-0),
    ]);
    expect(parseJsonArgument('{"a":"\\u00e9\\n"}  ')).toEqual({ a: 'é\n' });
  });

  // Each message is what QEMU 7.2 printed for `-blockdev <text>`.
  it.each([
    ['{', 'JSON parse error, premature EOI'],
    ['{"a":1', 'JSON parse error, premature EOI'],
    ['{"a":}', 'JSON parse error, expecting value'],
    ['{"a":1,}', 'JSON parse error, expecting value'],
    ['{"a":[1,]}', 'JSON parse error, expecting value'],
    ['{,}', 'JSON parse error, expecting value'],
    ['{"a" 1}', 'JSON parse error, missing : in object pair'],
    ['{a:1}', "JSON parse error, invalid keyword 'a'"],
    ['{"a":tru}', "JSON parse error, invalid keyword 'tru'"],
    ['{1:2}', 'JSON parse error, key is not a string in object'],
    ['{"a":1 "b":2}', 'JSON parse error, expected separator in dict'],
    ['{"a":[1 2]}', 'JSON parse error, expected separator in list'],
    ['{"driver":"null-co","driver":"x"}', 'JSON parse error, duplicate key'],
    ['{"a":"\\x"}', 'JSON parse error, invalid escape sequence in string'],
    ['{"a":01}', "JSON parse error, stray '01'"],
    ['{"a":@}', "JSON parse error, stray '@'"],
    ['{"a":"x', `JSON parse error, stray '"x'`],
    ['{"a":1}}', 'Expecting at most one JSON value'],
    ['{"a":1}  ,', 'Expecting at most one JSON value'],
  ])('%s -> %s', (text, message) => {
    expect(() => parseJsonArgument(text)).toThrow(message);
  });
});
