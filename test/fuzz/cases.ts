import { CLUSTER, FIELD, buildImage, setHeaderField, type Field } from '../support/qcow2-images.ts';
import { jsonText } from './json-text.ts';
import { Random } from './random.ts';
import { RequestGenerator } from './requests.ts';

/**
 * One fuzz case: the bytes a client sends after connecting (with `@DIR@` standing for the
 * target's private directory), whether it negotiates first, and files to place in that
 * directory beforehand.
 */
export interface FuzzCase {
  id: string;
  kind: 'request' | 'raw' | 'qcow2';
  description: string;
  negotiate: boolean;
  input: Buffer;
  files?: Record<string, Buffer>;
}

const REQUEST = (execute: string, args?: Record<string, unknown>) => jsonText(args ? { execute, arguments: args } : { execute }) + '\n';

/** Generates the cases of one seed: the same seed and index give the same case. */
export function* generateCases(seed: number, count: number): Generator<FuzzCase> {
  const random = new Random(seed);
  const requests = new RequestGenerator(random);
  for (let index = 0; index < count; index++) {
    const id = `${seed}-${index}`;
    const roll = random.next();
    if (roll < 0.7) {
      const request = requests.next();
      yield { id, kind: 'request', description: request.description, negotiate: true, input: Buffer.from(jsonText(request.value) + '\n') };
    } else if (roll < 0.9) {
      yield { id, kind: 'raw', ...rawCase(random, requests) };
    } else {
      yield { id, kind: 'qcow2', negotiate: true, ...hostileQcow2Case(random, index) };
    }
  }
}

/** Byte streams: garbage, valid requests cut and spliced, invalid UTF-8, bad escapes and numbers. */
function rawCase(random: Random, requests: RequestGenerator): { description: string; negotiate: boolean; input: Buffer } {
  const negotiate = random.chance(0.9);
  const valid = () => Buffer.from(jsonText(requests.valid().request));
  const kind = random.int(7);
  switch (kind) {
    case 0: {
      const bytes = Buffer.alloc(1 + random.int(48));
      for (let i = 0; i < bytes.length; i++) bytes[i] = random.chance(0.5) ? random.int(256) : random.pick([...Buffer.from('{}[]:," \\abcdefnrtu0123456789.-+eE\n')]);
      return { description: 'random bytes', negotiate, input: Buffer.concat([bytes, Buffer.from('\n'), valid(), Buffer.from('\n')]) };
    }
    case 1: {
      const first = valid();
      const cut = random.int(first.length);
      const glue = random.pick(['\n', '', ' ', '}', ']', '"', '\x00', '\xff']);
      return { description: `request cut at ${cut}, glued with ${JSON.stringify(glue)}`, negotiate, input: Buffer.concat([first.subarray(0, cut), Buffer.from(glue, 'latin1'), valid(), Buffer.from('\n')]) };
    }
    case 2: {
      const sequence = random.pick(INVALID_UTF8);
      const text = `{"execute": "block-dirty-bitmap-add", "arguments": {"node": "n0", "name": "b`;
      const input = Buffer.concat([Buffer.from(text), Buffer.from(sequence), Buffer.from('"}}\n'), valid(), Buffer.from('\n')]);
      return { description: `invalid UTF-8 ${Buffer.from(sequence).toString('hex')} in a string`, negotiate, input };
    }
    case 3: {
      const token = random.pick(BAD_TOKENS);
      return { description: `bad token ${JSON.stringify(token)}`, negotiate, input: Buffer.from(`{"execute": "query-block", "id": ${token}}\n${valid().toString()}\n`) };
    }
    case 4: {
      const garbage = random.pick(['cat', 'nul', 'tru', 'nulll', 'c\xff', 'abc def', '@', '\x01', "'x'", 'x'.repeat(300)]);
      return { description: `garbage ${JSON.stringify(garbage)}`, negotiate, input: Buffer.concat([Buffer.from(garbage, 'latin1'), Buffer.from(' '), valid(), Buffer.from('\n')]) };
    }
    case 5: {
      const escape = random.pick(['\\u12', '\\u', '\\x41', '\\uD800', '\\uDC00\\uD800', '\\uD83D\\uDE00', '\\uffff', '\\u0000', '\\/', '\\\'', '\\a', '\t', '\x1f']);
      return { description: `escape ${JSON.stringify(escape)}`, negotiate, input: Buffer.from(`{"execute": "block-dirty-bitmap-add", "arguments": {"node": "n0", "name": "a${escape}b"}}\n${valid().toString()}\n`, 'latin1') };
    }
    default: {
      const parts = [valid(), valid(), valid()].map((part) => part.toString());
      const separator = random.pick(['', ' ', '\r\n', '\n\n', '\t']);
      return { description: `three requests joined by ${JSON.stringify(separator)}`, negotiate, input: Buffer.from(parts.join(separator) + '\n') };
    }
  }
}

const INVALID_UTF8 = [[0xc0, 0x80], [0xc1, 0xbf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xff], [0xfe], [0x80], [0xe2, 0x82],
  [0xf0, 0x9f, 0x98], [0xef, 0xbf, 0xbf], [0xf4, 0x8f, 0xbf, 0xbf], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe0, 0x80, 0x80]];

const BAD_TOKENS = ['01', '-', '1.', '.5', '1e', '1e+', '+1', '0x10', 'NaN', 'Infinity', '-Infinity', 'True', 'nul', "'a'", '1.5e99999',
  '123456789012345678901234567890', '"\\u12"', '-0', '0e0', '[1,]', '{"a":1,}', '[,1]'];

/** One header field set to a hostile value; the image is opened with blockdev-add, written, given a persistent bitmap, and deleted. */
function hostileQcow2Case(random: Random, index: number): { description: string; input: Buffer; files: Record<string, Buffer> } {
  const image = buildImage({ version: random.chance(0.8) ? 3 : 2 });
  const field = random.pick(Object.keys(FIELD) as Field[]);
  const wide = FIELD[field][1] === 8;
  const values = wide
    ? [0n, 1n, 512n, BigInt(CLUSTER) + 1n, 2n ** 63n, 2n ** 64n - 1n, 2n ** 56n, 2n ** 40n, BigInt(random.int(2 ** 31))]
    : [0n, 1n, 2n, 4n, 8n, 9n, 21n, 22n, 31n, 63n, 64n, 65535n, 2n ** 31n, 2n ** 32n - 1n, BigInt(random.int(2 ** 31))];
  const value = random.pick(values);
  setHeaderField(image, field, value);
  const name = `hostile-${index}.qcow2`;
  const node = `h${index}`;
  let input = REQUEST('blockdev-add', { driver: 'qcow2', 'node-name': node, file: { driver: 'file', filename: `@DIR@/${name}` } });
  if (random.chance(0.5)) input += REQUEST('human-monitor-command', { 'command-line': `qemu-io ${node} "${random.pick(['write 0 64k', 'read 0 64k', 'write -z 1M 64k', 'discard 0 1M'])}"` });
  if (random.chance(0.5)) input += REQUEST('block-dirty-bitmap-add', { node, name: 'p0', persistent: true });
  input += REQUEST('blockdev-del', { 'node-name': node });
  return { description: `qcow2 header ${field} = ${value}`, input: Buffer.from(input), files: { [name]: image } };
}
