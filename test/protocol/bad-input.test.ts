import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonProcess, type RawClient } from '../support/daemon.ts';

// Every expected reply below is what QEMU 7.2.22 (qemu-system-x86_64 -M none) sent for the
// same bytes, except the 100 MB line, which QEMU did not finish reading in 20 minutes; there
// the expectation follows QEMU's 64 MiB token limit, as the smaller limit cases do.

const VERSION = /^\{"return": \{"qemu": \{"micro": \d+, "minor": 2, "major": 7\}, "package": "[^"]*"\}, "id": (.*)\}$/;
const parseError = (what: string) => `{"error": {"class": "GenericError", "desc": "JSON parse error, ${what}"}}`;

// Each input (as Python bytes, latin1 below), then a newline and {"id": N}, went to QEMU 7.2.22;
// these are the lines it sent before its reply to {"id": N} (checked last, as QEMU sent it). Noncharacters, bad \u escapes and
// bytes that end a number or keyword without belonging to it.
const ORACLE_CASES: Array<[string, string, string[]]> = [
    ["b'1\\xff '", "1\u00ff ", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input must be a JSON object\"}}", "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\uFFFD'\"}}"]],
    ["b'0\\xff '", "0\u00ff ", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input must be a JSON object\"}}", "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\uFFFD'\"}}"]],
    ["b'1.5\\xff'", "1.5\u00ff", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input must be a JSON object\"}}", "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\uFFFD'\"}}"]],
    ["b'1e5\\xff'", "1e5\u00ff", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input must be a JSON object\"}}", "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\uFFFD'\"}}"]],
    ["b'tru\\xff'", "tru\u00ff", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, invalid keyword 'tru'\"}}", "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\uFFFD'\"}}"]],
    ["b'c\\xfe'", "c\u00fe", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, invalid keyword 'c'\"}}", "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\uFFFD'\"}}"]],
    ["b'-\\xff'", "-\u00ff", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '-\\uFFFD'\"}}"]],
    ["b'1.\\xff'", "1.\u00ff", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '1.\\uFFFD'\"}}"]],
    ["b'c\\xc3\\xa9'", "c\u00c3\u00a9", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, invalid keyword 'c'\"}}", "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\uFFFD'\"}}"]],
    ["b'cc\\xc3\\xa9 x'", "cc\u00c3\u00a9 x", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, invalid keyword 'cc'\"}}", "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\uFFFD'\"}}"]],
    ["b'\"\\\\u\"'", "\"\\u\"", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, \\\\u\\\" is not a valid Unicode character\"}}"]],
    ["b'\"\\\\u1\"'", "\"\\u1\"", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, \\\\u1\\\" is not a valid Unicode character\"}}"]],
    ["b'\"\\\\ud800\\\\u12\"'", "\"\\ud800\\u12\"", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, \\\\ud800 is not a valid Unicode character\"}}"]],
    ["b'\"\\\\ud800\\\\ud800\"'", "\"\\ud800\\ud800\"", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, \\\\ud800 is not a valid Unicode character\"}}"]],
    ["b'\"\\\\ud800x\"'", "\"\\ud800x\"", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, \\\\ud800 is not a valid Unicode character\"}}"]],
    ["b'\"\\\\ufdd0\"'", "\"\\ufdd0\"", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, \\\\ufdd0 is not a valid Unicode character\"}}"]],
    ["b'\"\\xef\\xb7\\x90\"'", "\"\u00ef\u00b7\u0090\"", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, invalid UTF-8 sequence in string\"}}"]],
    ["b'\"\\\\u0000\"'", "\"\\u0000\"", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input must be a JSON object\"}}"]],
    ["b'\"\\xf0\\x9f\\xbf\\xbf\"'", "\"\u00f0\u009f\u00bf\u00bf\"", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, invalid UTF-8 sequence in string\"}}"]],
    ["b'\"a\\xef\\xbf\\xbe\"'", "\"a\u00ef\u00bf\u00be\"", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, invalid UTF-8 sequence in string\"}}"]],
    ["b'\"\\\\uFFFE\"'", "\"\\uFFFE\"", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, \\\\uFFFE is not a valid Unicode character\"}}"]],
    ["b'\"\\\\ud83f\\\\udffe\"'", "\"\\ud83f\\udffe\"", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, \\\\ud83f\\\\udffe is not a valid Unicode character\"}}"]],
    ["b'\"\\\\u00e9\\\\uffff\"'", "\"\\u00e9\\uffff\"", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, \\\\uffff is not a valid Unicode character\"}}"]],
    ["b'\"\\xef\\xbf\\xbf\\\\uffff\"'", "\"\u00ef\u00bf\u00bf\\uffff\"", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, invalid UTF-8 sequence in string\"}}"]],
    ["b'\"\\\\uffff\\xc3\"'", "\"\\uffff\u00c3\"", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, \\\\uffff is not a valid Unicode character\"}}"]],
    ["b'\"\\xf8\\x88\\x80\\x80\\x80\"'", "\"\u00f8\u0088\u0080\u0080\u0080\"", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, invalid UTF-8 sequence in string\"}}"]],
    ["b'\"\\xc0\\xaf\"'", "\"\u00c0\u00af\"", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, invalid UTF-8 sequence in string\"}}"]],
    ["b'01'", "01", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '01'\"}}"]],
    ["b'-0\\xff'", "-0\u00ff", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input must be a JSON object\"}}", "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\uFFFD'\"}}"]],
    ["b'1e\\xff'", "1e\u00ff", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '1e\\uFFFD'\"}}"]],
    ["b'tr ue'", "tr ue", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, invalid keyword 'tr'\"}}", "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, invalid keyword 'ue'\"}}"]],
    ["b'\\x01'", "\u0001", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\u0001'\"}}"]],
    ["b'@'", "@", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '@'\"}}"]],
    ["b'\"\\\\uffff\"'", "\"\\uffff\"", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, \\\\uffff is not a valid Unicode character\"}}"]],
    ["b'\"\\\\udbff\\\\udfff\"'", "\"\\udbff\\udfff\"", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, \\\\udbff\\\\udfff is not a valid Unicode character\"}}"]],
    ["b'\"\\xef\\xbf\\xbf\"'", "\"\u00ef\u00bf\u00bf\"", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, invalid UTF-8 sequence in string\"}}"]],
    ["b'\"\\xf4\\x8f\\xbf\\xbf\"'", "\"\u00f4\u008f\u00bf\u00bf\"", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, invalid UTF-8 sequence in string\"}}"]],
    ["b'\"\\xfd\\x94\\xb9\\xf0}]8\\xb5\\x90 \\n'", "\"\u00fd\u0094\u00b9\u00f0}]8\u00b5\u0090 \n", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\\"\\uFFFD\\uFFFD}]8\\uFFFD\\uFFFD \\n'\"}}"]],
    ["b'\"\\xe2\\x82\\n'", "\"\u00e2\u0082\n", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\\"\\uFFFD\\n'\"}}"]],
    ["b'\"\\xc1\\xbf\\n'", "\"\u00c1\u00bf\n", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\\"\\uFFFD\\n'\"}}"]],
    ["b'\"\\xed\\xa0\\x80\\n'", "\"\u00ed\u00a0\u0080\n", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\\"\\uFFFD\\n'\"}}"]],
    ["b'\"\\xf4\\x90\\x80\\x80\\n'", "\"\u00f4\u0090\u0080\u0080\n", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\\"\\uFFFD\\n'\"}}"]],
    ["b'\"\\xef\\xbf\\xbe\\n'", "\"\u00ef\u00bf\u00be\n", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\\"\\uFFFD\\n'\"}}"]],
    ["b'\"\\xf8\\x88\\x80\\x80\\x80\\n'", "\"\u00f8\u0088\u0080\u0080\u0080\n", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\\"\\uFFFD\\n'\"}}"]],
    ["b'\"\\xc0\\x80\\n'", "\"\u00c0\u0080\n", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\\"\\u0000\\n'\"}}"]],
    ["b'\"\\xfc\\x84\\x80\\x80\\x80\\x80\\n'", "\"\u00fc\u0084\u0080\u0080\u0080\u0080\n", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\\"\\uFFFD\\n'\"}}"]],
    ["b'\"a\\xe0\\x80\\x80b\\n'", "\"a\u00e0\u0080\u0080b\n", ["{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\\"a\\uFFFDb\\n'\"}}"]],
];

describe('bad input over a real socket: QEMU replies, and the session goes on', () => {
  let daemon: DaemonProcess;
  let client: RawClient;
  beforeAll(async () => {
    daemon = await DaemonProcess.start(['--concurrent-clients']);
    client = await daemon.client();
  });
  afterAll(async () => {
    client.close();
    await daemon.stop();
  });

  const idOfNextVersionReply = async () => {
    const line = await client.readLine(20_000);
    const match = VERSION.exec(line);
    expect(match, line).not.toBeNull();
    return match![1];
  };

  it('nesting beyond 1024 levels: one limit error, then one error per closing bracket', async () => {
    client.send(Buffer.from('['.repeat(1025) + ']'.repeat(1025) + '\n'));
    expect(await client.readLine()).toBe('{"error": {"class": "GenericError", "desc": "JSON nesting depth limit exceeded"}}');
    for (let i = 0; i < 1025; i++) expect(await client.readLine()).toBe(parseError('expecting value'));
    client.send('{"execute":"query-version","id":1}\n');
    expect(await idOfNextVersionReply()).toBe('1');
  });

  it('echoes an id nested 1023 levels deep', async () => {
    client.send(`{"execute":"query-version","id":${'['.repeat(1023)}${']'.repeat(1023)}}\n`);
    expect(await idOfNextVersionReply()).toBe('['.repeat(1023) + ']'.repeat(1023));
  });

  it.each([
    ['a raw NUL in a string', Buffer.from('{"execute":"query-version","id":"a\x00b"}\n', 'latin1'), [parseError(`stray '\\"a'`), parseError('expecting value')]],
    ['an invalid UTF-8 sequence', Buffer.from('{"execute":"query-version","id":"\xc3\x28"}\n', 'latin1'), [parseError('invalid UTF-8 sequence in string')]],
    ['a UTF-8 encoded surrogate', Buffer.from('{"execute":"query-version","id":"\xed\xa0\x80"}\n', 'latin1'), [parseError('invalid UTF-8 sequence in string')]],
    ['a code point beyond U+10FFFF', Buffer.from('{"execute":"query-version","id":"\xf4\x90\x80\x80"}\n', 'latin1'), [parseError('invalid UTF-8 sequence in string')]],
    ['a lone surrogate escape', Buffer.from('{"execute":"query-version","id":"\\ud800"}\n'), [parseError('\\\\ud800 is not a valid Unicode character')]],
  ])('%s', async (_name, bytes, expected) => {
    client.send(bytes);
    for (const line of expected) expect(await client.readLine()).toBe(line);
    client.send('{"execute":"query-version","id":2}\n');
    expect(await idOfNextVersionReply()).toBe('2');
  });

  it('skips a stray byte and runs the command after it', async () => {
    client.send(Buffer.from('\xff{"execute":"query-version","id":1}\n', 'latin1'));
    expect(await client.readLine()).toBe(parseError("stray '\\uFFFD'"));
    expect(await idOfNextVersionReply()).toBe('1');
  });

  it('reads modified UTF-8 NUL (C0 80) and integers beyond 64 bits as QEMU does', async () => {
    client.send(Buffer.from('{"execute":"query-version","id":"\xc0\x80"}\n', 'latin1'));
    expect(await idOfNextVersionReply()).toBe('"\\u0000"');
    client.send('{"execute":"query-version","id":18446744073709551616}\n');
    expect(await idOfNextVersionReply()).toBe('1.8446744073709552e+19');
    client.send('{"execute":"query-version","id":-9223372036854775809}\n');
    expect(await idOfNextVersionReply()).toBe('-9.2233720368547758e+18');
  });

  it('shows a megabyte of bad UTF-8 in a stray token as QEMU 7.2 did (one U+FFFD a sequence; sha256 of the line compared), then goes on', async () => {
    const pairs = 500_000;
    client.send(Buffer.concat([Buffer.from('"'), Buffer.alloc(2 * pairs, Buffer.from([0xfd, 0x94])), Buffer.from('\n')]));
    expect(await client.readLine()).toBe(parseError(`stray '\\"${'\\uFFFD'.repeat(pairs)}\\n'`));
    client.send('{"execute":"query-version","id":6}\n');
    expect(await idOfNextVersionReply()).toBe('6');
  });

  it('echoes a 300 KB id', async () => {
    const id = 'x'.repeat(300 * 1024);
    client.send(`{"execute":"query-version","id":"${id}"}\n`);
    expect(await idOfNextVersionReply()).toBe(`"${id}"`);
  });

  it('refuses a 100 MB token without running out of memory, then goes on', async () => {
    client.send(`{"execute":"query-version","id":"${'a'.repeat(100 << 20)}"}\n`);
    expect(await client.readLine(60_000)).toBe('{"error": {"class": "GenericError", "desc": "JSON token size limit exceeded"}}');
    expect(await client.readLine(60_000)).toBe(parseError('expecting value'));
    client.send('{"execute":"query-version","id":3}\n');
    expect(await idOfNextVersionReply()).toBe('3');
  }, 120_000);

  it('keeps serving a client that reads its replies late', async () => {
    const count = 20_000;
    client.socket.pause();
    client.send('{"execute":"query-version","id":4}\n'.repeat(count));
    await new Promise((resolve) => setTimeout(resolve, 500));
    client.socket.resume();
    for (let i = 0; i < count; i++) expect(await idOfNextVersionReply()).toBe('4');
    const other = await daemon.client();
    expect(await other.command({ execute: 'query-version', id: 5 })).toMatchObject({ id: 5 });
    other.close();
  }, 60_000);

  it.each(ORACLE_CASES.map(([name, bytes, replies], n) => [name, bytes, replies, n] as const))('%s', async (_name, bytes, replies, n) => {
    client.send(Buffer.concat([Buffer.from(bytes, 'latin1'), Buffer.from(`\n{"id":${n}}\n`)]));
    for (const reply of replies) expect(await client.readLine()).toBe(reply);
    expect(await client.readLine()).toBe(`{"id": ${n}, "error": {"class": "GenericError", "desc": "QMP input lacks member 'execute'"}}`);
  });
});
