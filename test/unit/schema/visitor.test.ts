import { describe, expect, it } from 'vitest';
import { JsonFloat } from '../../../src/qmp/json-value.ts';
import { loadSchema } from '../../../src/schema/index.ts';

const schema = loadSchema();

describe('input visitor: converted values in both modes', () => {
  it('QMP mode returns a new object holding the schema members, not the input', () => {
    const input = { granularity: 65536, name: 'b', node: 'n0' };
    const args = schema.validateCommandArguments('block-dirty-bitmap-add', input);
    expect(args).not.toBe(input);
    expect(args).toEqual({ node: 'n0', name: 'b', granularity: 65536 });
  });

  it('QMP mode wraps negative unsigned integers as C does and keeps wide ones exact', () => {
    const options = schema.validateType('BlockdevOptions', { driver: 'null-co', 'node-name': 'x', 'latency-ns': -1, size: 2n ** 62n }, 'qmp');
    expect(options).toEqual({ driver: 'null-co', 'node-name': 'x', size: 2n ** 62n, 'latency-ns': 2n ** 64n - 1n });
  });

  it('converts nested members, list elements and union variants', () => {
    const data = { node: 'n0', name: 'b', granularity: 65536 };
    const args = schema.validateCommandArguments('transaction', { actions: [{ type: 'block-dirty-bitmap-add', data }] });
    expect(args.actions[0]).toEqual({ type: 'block-dirty-bitmap-add', data: { node: 'n0', name: 'b', granularity: 65536 } });
    expect(args.actions[0]!.data).not.toBe(data);
  });

  it('refuses a whole float for an integer member, and the same value as an integer passes', () => {
    const add = (granularity: unknown) => () =>
      schema.validateCommandArguments('block-dirty-bitmap-add', { node: 'n0', name: 'b', granularity });
    expect(add(new JsonFloat(65536))).toThrow("Parameter 'granularity' expects uint64");
    expect(add(65536)).not.toThrow();
    expect(() => schema.validateType('BlockdevOptions', { driver: 'null-co', size: new JsonFloat(512) }, 'qmp')).toThrow(
      "Invalid parameter type for 'size', expected: integer",
    );
  });

  it('keyval mode converts strings to integers and booleans', () => {
    expect(schema.validateType('BlockdevOptions', { driver: 'null-co', size: '0x100000', 'read-zeroes': 'on' }, 'keyval')).toEqual({
      driver: 'null-co',
      size: 1048576,
      'read-zeroes': true,
    });
  });

  it("opts mode (the QemuOpts -object) converts as keyval does, with QEMU's opts visitor's texts (QEMU 7.2, iotest 105)", () => {
    const object = (value: Record<string, unknown>) => () => schema.validateType('ObjectOptions', value, 'opts');
    expect(object({ 'qom-type': 'throttle-group', id: 'tg', 'x-bps-read': '1048576' })()).toEqual({ 'qom-type': 'throttle-group', id: 'tg', 'x-bps-read': 1048576 });
    expect(object({ 'qom-type': 'throttle-group', id: 'tg', bogus: '1' })).toThrow("Invalid parameter 'bogus'");
    expect(object({ 'qom-type': 'throttle-group', id: 'tg', 'limits.bps-total': '5' })).toThrow("Invalid parameter 'limits.bps-total'");
    expect(object({ 'qom-type': 'throttle-group', id: 'tg', limits: '5' })).toThrow("Invalid parameter 'limits'");
    expect(object({ 'qom-type': 'throttle-group', id: 'tg', 'x-bps-total': 'abc' })).toThrow("Parameter 'x-bps-total' expects an int64 value");
    // The keyval visitor words the same mistakes differently.
    expect(() => schema.validateType('ObjectOptions', { 'qom-type': 'throttle-group', id: 'tg', bogus: '1' }, 'keyval')).toThrow("Parameter 'bogus' is unexpected");
  });
});
