import { describe, expect, it } from 'vitest';
import { ghashKeyOrder } from '../../../src/schema/ghash-order.ts';
import { qdictKeyOrder } from '../../../src/qmp/qdict-order.ts';

/**
 * `job-pause` arguments with unexpected members (in the order sent), and the one QEMU 7.2
 * named: "Parameter 'X' is unexpected" (qemu-system-x86_64 -M none, recorded).
 */
const RECORDED: Array<[string[], string]> = [
  [["id", "name", "data"], "data"],
  [["id", "foo", "name"], "name"],
  [["id", "mode", "zzz"], "zzz"],
  [["id", "driver", "speed"], "driver"],
  [["id", "opts", "format"], "format"],
  [["id", "file", "driver", "sync"], "driver"],
  [["id", "length", "b2", "name"], "b2"],
  [["id", "file", "persistent", "cache"], "cache"],
  [["id", "yy", "sync", "data", "offset"], "data"],
  [["id", "size", "bar", "speed", "a1"], "size"],
  [["id", "backing", "yy", "bitmap", "c3"], "backing"],
  [["id", "bar", "q", "yy", "name", "driver"], "driver"],
  [["id", "x", "granularity", "zzz", "size", "length"], "size"],
  [["id", "backing", "cache", "bitmap", "size", "opts"], "backing"],
  [["id", "foo", "node", "mode", "backing", "persistent", "offset"], "foo"],
  [["id", "node", "name", "backing", "offset", "x", "cache"], "backing"],
  [["id", "x", "size", "backing", "offset", "device", "target"], "backing"],
  [["id", "x", "c3", "job", "sync", "length", "size", "format"], "sync"],
  [["id", "x", "offset", "bitmap", "device", "name", "speed", "granularity"], "bitmap"],
  [["id", "size", "node", "zzz", "foo", "target", "device", "mode"], "foo"],
  [["id", "q", "name", "mode", "job", "format", "target", "foo", "device"], "job"],
  [["id", "speed", "file", "device", "a1", "format", "target", "size", "offset"], "format"],
  [["id", "a1", "format", "size", "data", "zzz", "name", "driver", "speed"], "format"],
];

describe('GLib hash table order of unexpected members', () => {
  it.each(RECORDED)('%j: QEMU names %s', (keys, named) => {
    const unexpected = ghashKeyOrder(qdictKeyOrder(keys)).filter((key) => key !== 'id');
    expect(unexpected[0]).toBe(named);
  });
});
