import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DaemonProcess, type RawClient } from '../support/daemon.ts';
import { CMD, NbdWire, OPT, infoPayload, lstr, metaPayload, u32 } from '../support/nbd-client.ts';
import { describeInterop, qemuImg } from '../support/qemu.ts';

/**
 * The same NBD conversations, byte for byte, with QEMU 7.2's server and with
 * qblockd's: every reply (option replies with their error texts, simple
 * replies, structured chunks) and every hang-up must be the same.
 */

interface Served {
  daemon: DaemonProcess;
  qmp: RawClient;
  socket: string;
}

const PROGRAMS = { qemu: 'qemu-system-x86_64', qblockd: undefined } as const;
const served: Partial<Record<keyof typeof PROGRAMS, Served>> = {};

async function serve(program: keyof typeof PROGRAMS, image: string): Promise<Served> {
  const daemon = await DaemonProcess.start(
    ['-blockdev', `driver=file,node-name=f0,filename=${image}`, '-blockdev', 'driver=qcow2,node-name=n0,file=f0'],
    { program: PROGRAMS[program] },
  );
  const qmp = await daemon.client();
  const socket = path.join(daemon.dir, 'nbd.sock');
  const run = async (execute: string, args: Record<string, unknown>) => {
    const reply = await qmp.command({ execute, arguments: args });
    expect(reply).toEqual({ return: {} });
  };
  await run('nbd-server-start', { addr: { type: 'unix', data: { path: socket } } });
  await run('block-export-add', { type: 'nbd', id: 'e0', 'node-name': 'n0', name: 'rw', writable: true, bitmaps: ['b0'], 'allocation-depth': true, description: 'writable' });
  await run('block-export-add', { type: 'nbd', id: 'e1', 'node-name': 'n0', name: 'ro', bitmaps: ['b1'] });
  return { daemon, qmp, socket };
}

/**
 * Runs `scenario` against both servers; qblockd's transcript must equal QEMU's.
 * A step that fails (a reply that never comes, a hang-up) ends the transcript with its reason.
 */
async function differential(scenario: (socket: string, out: unknown[]) => Promise<void>): Promise<unknown[]> {
  const transcripts: unknown[][] = [];
  for (const program of ['qemu', 'qblockd'] as const) {
    const out: unknown[] = [];
    await scenario(served[program]!.socket, out).catch((error: Error) => out.push(`failed: ${error.message}`));
    transcripts.push(out);
  }
  expect(transcripts[1]).toEqual(transcripts[0]);
  return transcripts[0]!;
}

async function structuredSession(socket: string, exportName: string, queries: string[] = []): Promise<NbdWire> {
  const { wire } = await NbdWire.handshake(socket);
  wire.option(OPT.STRUCTURED_REPLY);
  await wire.optionReplies();
  if (queries.length) {
    wire.option(OPT.SET_META, metaPayload(exportName, queries));
    await wire.optionReplies();
  }
  wire.option(OPT.GO, infoPayload(exportName));
  await wire.optionReplies();
  return wire;
}

describeInterop('NBD server against QEMU 7.2, byte for byte', { qemuImg: true, qemuSystem: true }, () => {
  beforeAll(async () => {
    const dir = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'qblockd-nbd-'));
    const image = path.join(dir, 'disk.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', image, '64M');
    execQemuIo(image, ['write -P 0xaa 0 1M', 'write -z 4M 1M', 'write -P 0x55 10M 64k', 'write -P 0x33 66060288 4096']);
    qemuImg('bitmap', '--add', image, 'b0');
    qemuImg('bitmap', '--add', '--disable', image, 'b1');
    for (const program of ['qemu', 'qblockd'] as const) {
      const copy = path.join(dir, `${program}.qcow2`);
      fs.copyFileSync(image, copy);
      served[program] = await serve(program, copy);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  afterAll(async () => {
    for (const session of Object.values(served)) await session?.daemon.stop();
  });

  it('greets, lists, and refuses options in QEMU words', async () => {
    const transcript = await differential(async (socket, out) => {
      const { wire, greeting } = await NbdWire.handshake(socket);
      out.push(greeting);
      const ask = async (option: number, payload?: Buffer, declared?: number) => {
        wire.option(option, payload, declared);
        out.push(await wire.optionReplies());
      };
      await ask(OPT.LIST);
      await ask(OPT.LIST, Buffer.from('x'));
      await ask(99, Buffer.from('ignored payload'));
      await ask(OPT.STARTTLS);
      await ask(OPT.STARTTLS, Buffer.from('xx'));
      await ask(OPT.SET_META, metaPayload('rw', ['base:allocation']));
      await ask(OPT.STRUCTURED_REPLY, Buffer.from('x'));
      await ask(OPT.STRUCTURED_REPLY);
      await ask(OPT.STRUCTURED_REPLY);
      await ask(OPT.INFO, infoPayload('nosuch'));
      await ask(OPT.INFO, infoPayload('n'.repeat(100)));
      await ask(OPT.INFO, infoPayload('rw', [1, 3, 2, 0, 77]));
      await ask(OPT.INFO, Buffer.concat([infoPayload('ro'), Buffer.from('trailing')]));
      await ask(OPT.GO, u32(2));
      await ask(OPT.GO, Buffer.concat([lstr('r\0'), Buffer.from([0, 0])]));
      await ask(OPT.INFO, Buffer.concat([u32(5000), Buffer.alloc(5000), Buffer.from([0, 0])]));
      await ask(OPT.LIST_META, metaPayload('rw', []));
      await ask(OPT.LIST_META, metaPayload('ro', []));
      for (const query of ['qemu:', 'base:', 'qemu:dirty-bitmap:', 'qemu:dirty-bitmap:b1', 'nosuch:x', 'base:allocation', 'qemu:allocation-depth']) {
        await ask(OPT.LIST_META, metaPayload('rw', [query]));
      }
      await ask(OPT.LIST_META, metaPayload('nosuch', ['base:']));
      await ask(OPT.SET_META, metaPayload('rw', ['qemu:dirty-bitmap:b0', 'base:allocation', 'base:allocation', 'qemu:']));
      await ask(OPT.SET_META, metaPayload('rw', ['x'.repeat(5000)]));
      await ask(OPT.ABORT);
      out.push(await wire.waitClosed());
    });
    expect(transcript.length).toBeGreaterThan(20);
  });

  it('serves reads, writes, block status and refusals with structured replies', async () => {
    await differential(async (socket, out) => {
      const wire = await structuredSession(socket, 'rw', ['base:allocation', 'qemu:allocation-depth', 'qemu:dirty-bitmap:b0']);
      const exchange = async (type: number, offset: number, length: number, options: { flags?: number; payload?: Buffer } = {}) => {
        wire.request(type, offset, length, { ...options, handle: out.length + 1 });
        out.push(await wire.reply());
      };
      await exchange(CMD.READ, 0, 2 * 1024 * 1024);
      await exchange(CMD.READ, 4 * 1024 * 1024 - 4096, 8192, { flags: 4 });
      await exchange(CMD.READ, 0, 0);
      await exchange(CMD.READ, 64 * 1024 * 1024 - 512, 1024);
      await exchange(CMD.READ, 2 ** 60, 1);
      await exchange(CMD.READ, 0, 32 * 1024 * 1024 + 1);
      await exchange(CMD.WRITE, 20 * 1024 * 1024, 4096, { payload: Buffer.alloc(4096, 0x5a) });
      await exchange(CMD.WRITE_ZEROES, 30 * 1024 * 1024, 65536, { flags: 2 });
      await exchange(CMD.WRITE_ZEROES, 0, 512, { flags: 4 });
      await exchange(CMD.BLOCK_STATUS, 0, 64 * 1024 * 1024);
      await exchange(CMD.BLOCK_STATUS, 0, 64 * 1024 * 1024, { flags: 8 });
      await exchange(CMD.BLOCK_STATUS, 4096, 0);
      await exchange(CMD.FLUSH, 0, 0);
      await exchange(CMD.CACHE, 0, 65536);
      await exchange(CMD.TRIM, 0, 65536);
      await exchange(42, 0, 0);
      await exchange(CMD.READ, 0, 512, { flags: 8 });
      await exchange(CMD.READ, 20 * 1024 * 1024, 4096);
      wire.request(CMD.DISC, 0, 0);
      out.push(await wire.waitClosed());
    });
  });

  it('refuses writes on a read-only export and answers old clients with simple replies', async () => {
    await differential(async (socket, out) => {
      const { wire } = await NbdWire.handshake(socket);
      wire.option(OPT.GO, infoPayload('ro'));
      out.push(await wire.optionReplies());
      const simple = async (type: number, offset: number, length: number, dataLength = 0, payload?: Buffer) => {
        wire.request(type, offset, length, { handle: out.length, payload });
        out.push(await wire.simpleReply(dataLength));
      };
      await simple(CMD.READ, 0, 4096, 4096);
      await simple(CMD.READ, 64 * 1024 * 1024, 1);
      await simple(CMD.WRITE, 0, 512, 0, Buffer.alloc(512, 1));
      await simple(CMD.WRITE_ZEROES, 0, 512);
      await simple(CMD.TRIM, 0, 512);
      await simple(CMD.BLOCK_STATUS, 0, 512);
      await simple(CMD.READ, 0, 512, 512);
      wire.request(CMD.WRITE, 0, 64 * 1024 * 1024, { handle: 99 });
      out.push(await wire.simpleReply());
      out.push(await wire.waitClosed());
    });
  });

  it('hangs up on what QEMU hangs up on', async () => {
    const cases: Array<(wire: NbdWire) => Promise<void> | void> = [
      (wire) => wire.send(Buffer.from('NOTMAGIC\0\0\0\x01\0\0\0\0')),
      (wire) => wire.option(OPT.LIST, Buffer.alloc(0), 0x7fffffff),
      (wire) => wire.option(OPT.EXPORT_NAME, Buffer.from('nosuch')),
      (wire) => wire.option(OPT.EXPORT_NAME, Buffer.alloc(5000, 0x41)),
      async (wire) => {
        wire.option(OPT.GO, infoPayload('rw'));
        await wire.optionReplies();
        wire.send(Buffer.alloc(28, 0xff));
      },
    ];
    await differential(async (socket, out) => {
      for (const hostile of cases) {
        const { wire } = await NbdWire.handshake(socket);
        await hostile(wire);
        out.push(await wire.waitClosed());
      }
      const unknownFlags = await NbdWire.handshake(socket, 0x80);
      out.push(await unknownFlags.wire.waitClosed());
    });
  });

  it('answers EXPORT_NAME with or without the zero padding, and old-style clients only to it', async () => {
    await differential(async (socket, out) => {
      for (const flags of [1, 3, 0]) {
        const { wire } = await NbdWire.handshake(socket, flags);
        wire.option(OPT.EXPORT_NAME, Buffer.from('ro'));
        out.push((await wire.read(flags & 2 ? 10 : 134)).toString('hex'));
        wire.request(CMD.READ, 10 * 1024 * 1024, 16, { handle: 7 });
        out.push(await wire.simpleReply(16));
        wire.close();
      }
      const { wire } = await NbdWire.handshake(socket, 0);
      wire.option(OPT.LIST);
      out.push(await wire.waitClosed());
    });
  });

  it('drops clients on block-export-del mode hard and refuses mode safe while they are connected', async () => {
    const transcripts: unknown[][] = [];
    for (const program of ['qemu', 'qblockd'] as const) {
      const { qmp, socket } = served[program]!;
      const out: unknown[] = [];
      await qmp.command({ execute: 'block-export-add', arguments: { type: 'nbd', id: 'gone', 'node-name': 'n0', name: 'gone' } });
      const wire = await structuredSession(socket, 'gone');
      out.push(await qmp.command({ execute: 'block-export-del', arguments: { id: 'gone' } }));
      // The reply and BLOCK_EXPORT_DELETED, in the order they come.
      qmp.send(JSON.stringify({ execute: 'block-export-del', arguments: { id: 'gone', mode: 'hard' } }) + '\n');
      const first = JSON.parse(await qmp.readLine());
      const second = JSON.parse(await qmp.readLine());
      out.push([first, second].map((message) => ('event' in message ? message.event : message)));
      out.push(await wire.waitClosed());
      out.push(await qmp.command({ execute: 'query-block-exports' }));
      const late = await NbdWire.handshake(socket);
      late.wire.option(OPT.GO, infoPayload('gone'));
      out.push(await late.wire.optionReplies());
      late.wire.close();
      transcripts.push(out.map((entry) => JSON.parse(JSON.stringify(entry).replace(/"seconds":\d+,"microseconds":\d+/, ''))));
    }
    expect(transcripts[1]).toEqual(transcripts[0]);
  });
});

function execQemuIo(image: string, commands: string[]): void {
  const args = ['-f', 'qcow2'];
  for (const command of commands) args.push('-c', command);
  args.push(image);
  const result = spawnSync('qemu-io', args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(result.stderr);
}
