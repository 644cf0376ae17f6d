import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toQmpJson } from '../../src/qmp/wire.ts';
import { DaemonProcess, type RawClient } from '../support/daemon.ts';
import { describeInterop } from '../support/qemu.ts';

// QEMU 7.2.22 with -mon chardev=...,mode=control,pretty=on sent exactly this for
// {"execute":"query-version","id":[1,[],{},{"a":[2,3]},"x"]} (package string aside).
const PRETTY_VERSION_REPLY = [
  '{',
  '    "return": {',
  '        "qemu": {',
  '            "micro": 22,',
  '            "minor": 2,',
  '            "major": 7',
  '        },',
  '        "package": "P"',
  '    },',
  '    "id": [',
  '        1,',
  '        [',
  '        ],',
  '        {',
  '        },',
  '        {',
  '            "a": [',
  '                2,',
  '                3',
  '            ]',
  '        },',
  '        "x"',
  '    ]',
  '}',
];

/** One pretty-printed message: lines up to the closing brace at column 0. */
async function readPretty(client: RawClient): Promise<string[]> {
  const lines = [await client.readLine()];
  while (lines[lines.length - 1] !== '}') lines.push(await client.readLine());
  return lines;
}

describe('pretty=on: QEMU layout over a real socket', () => {
  let daemon: DaemonProcess;
  beforeAll(async () => {
    daemon = await DaemonProcess.start([], { pretty: true });
  });
  afterAll(() => daemon.stop());

  it('prints every reply over several lines, four spaces a level, CRLF line ends', async () => {
    const client = await daemon.connect();
    expect((await readPretty(client))[1]).toBe('    "QMP": {');
    client.send('{"execute":"qmp_capabilities"}');
    expect(await readPretty(client)).toEqual(['{', '    "return": {', '    }', '}']);
    client.send('{"execute":"query-version","id":[1,[],{},{"a":[2,3]},"x"]}');
    const reply = await readPretty(client);
    expect(reply.map((line) => line.replace(/"package": ".*"/, '"package": "P"'))).toEqual(PRETTY_VERSION_REPLY);
    client.send('{"execute":"query-version"}');
    let raw = '';
    client.socket.on('data', (chunk) => (raw += chunk.toString()));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(raw).toMatch(/^\{\r\n {4}"return": \{\r\n/);
    client.close();
  });

  it('formats values the same way in the serialiser', () => {
    const text = toQmpJson({ return: { qemu: { major: 7, minor: 2, micro: 22 }, package: 'P' }, id: [1, [], {}, { a: [2, 3] }, 'x'] }, true);
    expect(text.split('\n')).toEqual(PRETTY_VERSION_REPLY);
  });
});

describeInterop('pretty=on compared with QEMU 7.2 byte for byte', { qemuSystem: true }, () => {
  const script = [
    '{"execute":"qmp_capabilities"}',
    '{"execute":"query-version","id":{"nested":[[],{},[{"k":null,"t":true,"f":1.5}]]}}',
    '{"execute":"no-such-command","id":"x"}',
    '{"execute":"nbd-server-start","arguments":{"addr":{"type":"unix","data":{"path":"NBD"}}}}',
    '{"execute":"block-export-add","arguments":{"type":"nbd","id":"e0","node-name":"n0"}}',
    '{"execute":"query-block-exports"}',
    '{"execute":"block-export-del","arguments":{"id":"e0"}}',
    '{"execute":"query-block-exports"}',
  ];

  async function transcript(program?: string): Promise<string> {
    const daemon = await DaemonProcess.start(['-blockdev', 'driver=null-co,node-name=n0,size=1048576'], { pretty: true, ...(program ? { program } : {}) });
    try {
      const client = await daemon.connect();
      let raw = '';
      client.socket.on('data', (chunk: Buffer) => (raw += chunk.toString('latin1')));
      for (const [n, request] of script.entries()) {
        // A query-version tagged with the step's number marks where its output ends.
        client.send(request.replace('NBD', path.join(daemon.dir, 'nbd.sock')) + `\n{"execute":"query-version","id":"sync-${n}"}\n`);
        const marker = `"id": "sync-${n}"\r\n}\r\n`;
        for (let i = 0; i < 1000 && !raw.endsWith(marker); i++) await new Promise((resolve) => setTimeout(resolve, 10));
      }
      client.close();
      return raw
        .replace(/"package": "[^"]*"/g, '"package": "P"')
        .replace(/"seconds": \d+/g, '"seconds": S')
        .replace(/"microseconds": \d+/g, '"microseconds": U');
    } finally {
      await daemon.stop();
    }
  }

  it('sends the same greeting, replies, errors and events', async () => {
    const qemu = await transcript('qemu-system-x86_64');
    expect(qemu).toContain('"event": "BLOCK_EXPORT_DELETED"');
    expect(await transcript()).toBe(qemu);
  }, 60_000);
});
