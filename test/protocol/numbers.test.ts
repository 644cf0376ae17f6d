import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonProcess, QBLOCKD, type RawClient } from '../support/daemon.ts';

// Every expected reply below is what QEMU 7.2.22 (qemu-system-x86_64 -M none, with
// -blockdev driver=null-co,node-name=n0,size=1048576) sent for the same request bytes.

const error = (desc: string) => `{"error": {"class": "GenericError", "desc": "${desc}"}}`;

describe('JSON floats: integer parameters refuse them, ids echo them as QEMU prints doubles', () => {
  let daemon: DaemonProcess;
  let client: RawClient;
  beforeAll(async () => {
    daemon = await DaemonProcess.start(['-blockdev', 'driver=null-co,node-name=n0,size=1048576']);
    client = await daemon.client();
  });
  afterAll(async () => {
    client.close();
    await daemon.stop();
  });

  const add = (granularity: string) =>
    `{"execute":"block-dirty-bitmap-add","arguments":{"node":"n0","name":"b","granularity":${granularity}}}`;
  const nullCo = (member: string) => `{"execute":"blockdev-add","arguments":{"driver":"null-co","node-name":"x",${member}}}`;

  it.each([
    [add('65536.0'), error("Parameter 'granularity' expects uint64")],
    [add('6.5536e4'), error("Parameter 'granularity' expects uint64")],
    [add('6.5536E4'), error("Parameter 'granularity' expects uint64")],
    [add('65536e0'), error("Parameter 'granularity' expects uint64")],
    [add('-0.0'), error("Parameter 'granularity' expects uint64")],
    [add('1.5'), error("Parameter 'granularity' expects uint64")],
    [add('18446744073709551616'), error("Parameter 'granularity' expects uint64")],
    [add('-65536'), error("Parameter 'granularity' expects uint32_t")],
    [nullCo('"size":1048576.0'), error("Invalid parameter type for 'size', expected: integer")],
    [nullCo('"size":1e3'), error("Invalid parameter type for 'size', expected: integer")],
    [nullCo('"size":18446744073709551616'), error("Invalid parameter type for 'size', expected: integer")],
    [nullCo('"size":9223372036854775808'), error("Invalid parameter type for 'size', expected: integer")],
    [nullCo('"latency-ns":1.0'), error("Parameter 'latency-ns' expects uint64")],
    [nullCo('"read-zeroes":1.0'), error("Invalid parameter type for 'read-zeroes', expected: boolean")],
    [
      '{"execute":"blockdev-add","arguments":{"driver":"raw","node-name":"x","file":"n0","offset":0.0}}',
      error("Invalid parameter type for 'offset', expected: integer"),
    ],
    [
      '{"execute":"blockdev-add","arguments":{"driver":"qcow2","node-name":"x","file":"n0","cache-size":1.0}}',
      error("Invalid parameter type for 'cache-size', expected: integer"),
    ],
    [
      '{"execute":"blockdev-add","arguments":{"driver":"raw","node-name":"x","file":1.0}}',
      error("Invalid parameter type for 'file', expected: BlockdevRef"),
    ],
    [
      '{"execute":"human-monitor-command","arguments":{"command-line":"info version","cpu-index":0.0}}',
      error("Invalid parameter type for 'cpu-index', expected: integer"),
    ],
    [
      '{"execute":"nbd-server-start","arguments":{"addr":{"type":"inet","data":{"host":"127.0.0.1","port":"0","to":1.0}}}}',
      error("Parameter 'addr.data.to' expects uint64"),
    ],
    [
      '{"execute":"nbd-server-start","arguments":{"addr":{"type":"unix","data":{"path":"/nonexistent/x"}},"max-connections":1.0}}',
      error("Parameter 'max-connections' expects uint64"),
    ],
    [
      '{"execute":"transaction","arguments":{"actions":[{"type":"block-dirty-bitmap-add","data":{"node":"n0","name":"b","granularity":65536.0}}]}}',
      error("Parameter 'actions[0].data.granularity' expects uint64"),
    ],
    [
      '{"execute":"block-dirty-bitmap-merge","arguments":{"node":"n0","target":"b","bitmaps":[1.0]}}',
      error("Invalid parameter type for 'null', expected: BlockDirtyBitmapOrStr"),
    ],
    ['{"execute":"query-named-block-nodes","arguments":{"flat":1.0}}', error("Invalid parameter type for 'flat', expected: boolean")],
    ['{"execute":"query-version","arguments":1.5}', error("QMP input member 'arguments' must be an object")],
    ['{"execute":1.5}', error("QMP input member 'execute' must be a string")],
    ['1.5', error('QMP input must be a JSON object')],
  ])('%s', async (request, reply) => {
    expect(await client.exchange(request + '\n')).toBe(reply);
  });

  it('takes the same values written as integers', async () => {
    expect(await client.exchange(add('65536') + '\n')).toBe('{"return": {}}');
    expect(await client.exchange(nullCo('"size":1048576') + '\n')).toBe('{"return": {}}');
  });

  it.each([
    ['1.0', '1'],
    ['1.5', '1.5'],
    ['0.1', '0.10000000000000001'],
    ['1e-7', '9.9999999999999995e-08'],
    ['1e400', 'inf'],
    ['-1e400', '-inf'],
    ['[1e400, 18446744073709551616, -0.0]', '[inf, 1.8446744073709552e+19, -0]'],
    ['18446744073709551615', '18446744073709551615'],
    ['-9223372036854775809', '-9.2233720368547758e+18'],
  ])('echoes the id %s as %s', async (id, echoed) => {
    expect(await client.exchange(`{"execute":"blockdev-del","arguments":{"node-name":"nope"},"id":${id}}\n`)).toBe(
      `{"id": ${echoed}, "error": {"class": "GenericError", "desc": "Failed to find node with node-name='nope'"}}`,
    );
  });
});

// QEMU 7.2.22 printed each message after "qemu-system-x86_64: -blockdev SPEC: " and exited 1.
describe('-blockdev refuses floats for integer options, in keyval and in JSON syntax', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-numbers-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['driver=null-co,node-name=n0,size=1048576.0', "Parameter 'size' expects integer"],
    ['driver=null-co,node-name=n0,latency-ns=1.0', "Parameter 'latency-ns' expects integer"],
    ['{"driver": "null-co", "node-name": "n0", "size": 1048576.0}', "Invalid parameter type for 'size', expected: integer"],
    ['{"driver": "null-co", "node-name": "n0", "size": 1e3}', "Invalid parameter type for 'size', expected: integer"],
    ['{"driver": "null-co", "node-name": "n0", "latency-ns": 1.0}', "Parameter 'latency-ns' expects uint64"],
    [
      '{"driver": "raw", "node-name": "n0", "file": {"driver": "null-co", "size": 512.0}}',
      "Invalid parameter type for 'file.size', expected: integer",
    ],
  ])('%s', (spec, message) => {
    const run = spawnSync(QBLOCKD, ['-blockdev', spec, '-qmp', `unix:${path.join(dir, 'q.sock')},server=on,wait=off`], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(run.status).toBe(1);
    expect(run.stderr.trim().endsWith(`: ${message}`), run.stderr).toBe(true);
  });
});
