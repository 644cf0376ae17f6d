import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonProcess, type RawClient } from '../support/daemon.ts';

// Every expected line below is what QEMU 7.2.22 (qemu-system-x86_64 -M none) sent for the same
// input, byte for byte, apart from the greeting's version and package.

describe('QMP envelope over a real Unix socket', () => {
  let daemon: DaemonProcess;
  beforeAll(async () => {
    daemon = await DaemonProcess.start(['-blockdev', 'driver=null-co,node-name=n0']);
  });
  afterAll(async () => daemon.stop());

  it('greets with QEMU 7.2 version, package and the oob capability, CRLF-terminated', async () => {
    const client = await daemon.connect();
    const greeting = await client.readLine();
    expect(greeting).toMatch(
      /^\{"QMP": \{"version": \{"qemu": \{"micro": \d+, "minor": 2, "major": 7\}, "package": "[^"]*"\}, "capabilities": \["oob"\]\}\}$/,
    );
    client.close();
  });

  describe('before negotiation', () => {
    let client: RawClient;
    beforeAll(async () => {
      client = await daemon.connect();
      await client.readLine();
    });
    afterAll(() => client.close());

    it('rewrites CommandNotFound into the negotiation hint and echoes any id', async () => {
      expect(await client.exchange('{"execute":"query-version","id":{"b":1,"a":[1,2.5,1e300,-0.0,12345678901234567890]}}\n')).toBe(
        '{"id": {"a": [1, 2.5, 1.0000000000000001e+300, -0, 12345678901234567890], "b": 1}, "error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with \'qmp_capabilities\'"}}',
      );
    });

    it('negotiates, escaping non-ASCII ids as QEMU does', async () => {
      expect(await client.exchange('{"execute":"qmp_capabilities","id":"é\\u0001\\u007f😀"}\n')).toBe(
        '{"return": {}, "id": "\\u00E9\\u0001\\u007F\\uD83D\\uDE00"}',
      );
    });
  });

  describe('after negotiation', () => {
    let client: RawClient;
    beforeAll(async () => {
      client = await daemon.client();
    });
    afterAll(() => client.close());

    const cases: Array<[string, string]> = [
      ['{"execute":"qmp_capabilities"}', '{"error": {"class": "CommandNotFound", "desc": "Capabilities negotiation is already complete, command ignored"}}'],
      ['{"execute":"nope","id":5}', '{"id": 5, "error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}'],
      ['[1]', '{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}'],
      ['"str"', '{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}'],
      ['{"execute":"query-version","foo":1}', '{"error": {"class": "GenericError", "desc": "QMP input member \'foo\' is unexpected"}}'],
      ['{"execute":1}', '{"error": {"class": "GenericError", "desc": "QMP input member \'execute\' must be a string"}}'],
      ['{"execute":"query-version","arguments":[]}', '{"error": {"class": "GenericError", "desc": "QMP input member \'arguments\' must be an object"}}'],
      ['{"arguments":{}}', '{"error": {"class": "GenericError", "desc": "QMP input lacks member \'execute\'"}}'],
      ['{}', '{"error": {"class": "GenericError", "desc": "QMP input lacks member \'execute\'"}}'],
      ['{"execute":"quer-version", "id": 1, "control": {}}', '{"id": 1, "error": {"class": "GenericError", "desc": "QMP input member \'control\' is unexpected"}}'],
      // QEMU checks members in its hash-table order: 'extra' is met before 'arguments'.
      ['{"execute":"query-version","id":1,"extra":2,"arguments":3}', '{"id": 1, "error": {"class": "GenericError", "desc": "QMP input member \'extra\' is unexpected"}}'],
      ['{"execute":"block-dirty-bitmap-add","arguments":{"node":"n0","name":"x","granularity":1000},"id":null}', '{"id": null, "error": {"class": "GenericError", "desc": "Granularity must be power of 2 and at least 512"}}'],
      ['{"execute":"query-version","id":0.1}', '"id": 0.10000000000000001}'],
      ['{"execute":"query-version","id":1.5e-7}', '"id": 1.4999999999999999e-07}'],
      ['{"execute":"query-version","id":9007199254740993}', '"id": 9007199254740993}'],
      ['{"execute":"query-version","id":-9223372036854775809}', '"id": -9.2233720368547758e+18}'],
      ['{"execute":"query-version","id":18446744073709551615}', '"id": 18446744073709551615}'],
      ['{"execute":"query-version","id":"a\\"\\\\/\\b\\f\\n\\r\\t"}', '"id": "a\\"\\\\/\\b\\f\\n\\r\\t"}'],
    ];
    it.each(cases)('%s', async (input, expected) => {
      const reply = await client.exchange(input + '\n');
      if (expected.startsWith('{')) expect(reply).toBe(expected);
      else expect(reply.endsWith(expected)).toBe(true);
    });

    it('joins an object split across writes and lines', async () => {
      client.send('{"execute":"query-');
      client.send('version",\n "id": "split"');
      expect(await client.exchange('}')).toMatch(/^\{"return": \{"qemu": .*\}, "id": "split"\}$/);
    });

    it('answers several objects on one line in order', async () => {
      client.send('{"execute":"query-version","id":1}{"execute":"nope","id":2} {"execute":"query-version","id":3}\n');
      expect(JSON.parse(await client.readLine()).id).toBe(1);
      expect(JSON.parse(await client.readLine()).id).toBe(2);
      expect(JSON.parse(await client.readLine()).id).toBe(3);
    });
  });

  it('quit sends SHUTDOWN before its reply, then exits cleanly', async () => {
    const own = await DaemonProcess.start();
    const client = await own.client();
    client.send('{"execute":"quit"}\n');
    expect(await client.readLine()).toMatch(
      /^\{"timestamp": \{"seconds": \d+, "microseconds": \d+\}, "event": "SHUTDOWN", "data": \{"guest": false, "reason": "host-qmp-quit"\}\}$/,
    );
    expect(await client.readLine()).toBe('{"return": {}}');
    expect(await own.exited()).toBe(0);
    await own.stop();
  });
});
