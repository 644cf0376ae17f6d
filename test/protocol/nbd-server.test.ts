import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DaemonProcess, type RawClient } from '../support/daemon.ts';
import { CMD, NbdWire, OPT, infoPayload } from '../support/nbd-client.ts';

// The nbd-server-start answers below are what QEMU 7.2 (qemu-system-x86_64 -M none) gave for
// the same arguments; test/interop/nbd-server-start-qemu.test.ts asks it again where installed.

const GIB = 1024 * 1024 * 1024;

function rssKiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]);
}

describe('nbd-server-start: QEMU answers for security options and odd addresses', () => {
  let daemon: DaemonProcess;
  let qmp: RawClient;
  beforeAll(async () => {
    daemon = await DaemonProcess.start([], { env: { TMPDIR: '' } });
    qmp = await daemon.client();
  });
  afterAll(async () => {
    qmp.close();
    await daemon.stop();
  });
  afterEach(async () => {
    await qmp.command({ execute: 'nbd-server-stop' });
  });

  const start = (addr: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    qmp.command({ execute: 'nbd-server-start', arguments: { addr, ...extra } });
  const inet = (port: string) => ({ type: 'inet', data: { host: '127.0.0.1', port } });
  const error = (desc: string) => ({ error: { class: 'GenericError', desc } });

  it('refuses tls-creds naming no object, on unix and inet, and starts nothing', async () => {
    const socket = path.join(daemon.dir, 'nbd.sock');
    expect(await start({ type: 'unix', data: { path: socket } }, { 'tls-creds': 'x' })).toEqual(error("No TLS credentials with id 'x'"));
    expect(fs.existsSync(socket)).toBe(false);
    expect(await start(inet('0'), { 'tls-creds': 'tls0' })).toEqual(error("No TLS credentials with id 'tls0'"));
    expect(await qmp.command({ execute: 'nbd-server-stop' })).toEqual(error('NBD server not running'));
    expect(await start({ type: 'unix', data: { path: socket } })).toEqual({ return: {} });
  });

  it('answers ports as getaddrinfo reads them, never with a Node message', async () => {
    for (const port of ['x', '-1', '0x10', '8 ', '99999999999999999999999']) {
      expect(await start(inet(port))).toEqual(error(`address resolution failed for 127.0.0.1:${port}: Servname not supported for ai_socktype`));
    }
    // 65536 wraps to 0 (any free port), "" and "-0" are 0 as well.
    for (const port of ['65536', '', '-0']) {
      expect(await start(inet(port))).toEqual({ return: {} });
      expect(await qmp.command({ execute: 'nbd-server-stop' })).toEqual({ return: {} });
    }
    expect(await start({ type: 'inet', data: { host: 'nosuchhost.invalid', port: '1' } })).toEqual(
      error('address resolution failed for nosuchhost.invalid:1: Name or service not known'),
    );
  });

  it('listens on a fresh temporary socket for an empty unix path', async () => {
    const tmp = fs.mkdtempSync(path.join(daemon.dir, 'tmp-'));
    const local = await DaemonProcess.start([], { env: { TMPDIR: tmp } });
    try {
      const client = await local.client();
      expect(await client.command({ execute: 'nbd-server-start', arguments: { addr: { type: 'unix', data: { path: '' } } } })).toEqual({ return: {} });
      const [created] = fs.readdirSync(tmp);
      expect(created).toMatch(/^qemu-socket-[A-Za-z0-9]{6}$/);
      const { greeting } = await NbdWire.handshake(path.join(tmp, created!));
      expect(greeting.slice(0, 16)).toBe(Buffer.from('NBDMAGIC').toString('hex'));
      client.close();
    } finally {
      await local.stop();
    }
  });
});

describe('hostile NBD clients: never a crash, memory bounded, others served', () => {
  let daemon: DaemonProcess;
  let qmp: RawClient;
  let socket: string;
  beforeAll(async () => {
    daemon = await DaemonProcess.start(['-blockdev', `driver=null-co,node-name=n0,size=${4 * GIB},read-zeroes=on`]);
    qmp = await daemon.client();
    socket = path.join(daemon.dir, 'nbd.sock');
    await qmp.command({ execute: 'nbd-server-start', arguments: { addr: { type: 'unix', data: { path: socket } } } });
    expect(await qmp.command({ execute: 'block-export-add', arguments: { type: 'nbd', id: 'e0', 'node-name': 'n0', name: 'disk' } })).toEqual({ return: {} });
  });
  afterAll(async () => {
    qmp.close();
    await daemon.stop();
  });

  async function go(): Promise<NbdWire> {
    const { wire } = await NbdWire.handshake(socket);
    wire.option(OPT.STRUCTURED_REPLY);
    await wire.optionReplies();
    wire.option(OPT.GO, infoPayload('disk'));
    const replies = await wire.optionReplies();
    expect(replies.at(-1)!.type).toBe(1);
    return wire;
  }

  async function stillServing(): Promise<void> {
    const wire = await go();
    wire.request(CMD.READ, 4 * GIB - 4096, 4096, { flags: 4, handle: 5 });
    const [chunk] = await wire.reply();
    expect(chunk).toMatchObject({ kind: 'structured', flags: 1, type: 1, handle: '0000000000000005' });
    wire.close();
    expect((await qmp.command({ execute: 'query-block-exports' })).return).toHaveLength(1);
  }

  it('a client that asks for gigabytes and never reads costs bounded memory, and others are served meanwhile', async () => {
    const before = rssKiB(daemon.child.pid!);
    const greedy = await go();
    greedy.socket.pause();
    const request = Buffer.alloc(28);
    request.writeUInt32BE(0x25609513, 0);
    request.writeUInt16BE(4, 4); // NBD_CMD_FLAG_DF: one data chunk per read
    request.writeUInt32BE(32 * 1024 * 1024, 24);
    const batch = Buffer.concat(Array.from({ length: 1024 }, () => request));
    // Ask for 32 MiB reads until the daemon stops taking requests: the socket backs up.
    let asked = 0;
    for (let round = 0; round < 10_000 && greedy.socket.writableLength < 4 * 1024 * 1024; round++) {
      greedy.send(batch);
      asked += 1024;
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(greedy.socket.writableLength).toBeGreaterThanOrEqual(4 * 1024 * 1024);
    expect(asked * 32).toBeGreaterThan(1024 * 1024); // more than a TiB asked for
    await stillServing();
    expect(rssKiB(daemon.child.pid!) - before).toBeLessThan(256 * 1024);
    greedy.close();
    await stillServing();
  });

  it('hangs up on bad magic, oversized options and garbage requests, and serves the next client', async () => {
    const badMagic = await NbdWire.handshake(socket);
    badMagic.wire.send(Buffer.from('IHAVEOPX\0\0\0\x03\0\0\0\0'));
    expect(await badMagic.wire.waitClosed()).toBe(true);

    const huge = await NbdWire.handshake(socket);
    huge.wire.option(OPT.LIST, Buffer.alloc(0), 0xffffffff);
    expect(await huge.wire.waitClosed()).toBe(true);

    const garbage = await go();
    garbage.send(Buffer.alloc(28, 0x41));
    expect(await garbage.waitClosed()).toBe(true);

    await stillServing();
  });

  it('skips a 32 MiB option payload without holding it, then answers', async () => {
    const { wire } = await NbdWire.handshake(socket);
    wire.option(1234, Buffer.alloc(32 * 1024 * 1024));
    expect(await wire.optionReplies()).toEqual([{ option: 1234, type: 0x80000001, payload: 'Unsupported option 1234 (<unknown>)' }]);
    wire.option(OPT.ABORT);
    expect(await wire.optionReplies()).toEqual([{ option: OPT.ABORT, type: 1, payload: '' }]);
    expect(await wire.waitClosed()).toBe(true);
  });

  it('options out of order: meta contexts before structured replies, transmission commands during negotiation', async () => {
    const { wire } = await NbdWire.handshake(socket);
    wire.option(OPT.SET_META, Buffer.alloc(0));
    expect(await wire.optionReplies()).toEqual([{ option: OPT.SET_META, type: 0x80000003, payload: "request option 'set meta context' when structured reply is not negotiated" }]);
    wire.request(CMD.READ, 0, 512);
    expect(await wire.waitClosed()).toBe(true);
    await stillServing();
  });

  it('reads past the end get EINVAL and the connection goes on', async () => {
    const wire = await go();
    wire.request(CMD.READ, 4 * GIB, 1, { handle: 1 });
    expect(await wire.reply()).toEqual([
      { kind: 'structured', flags: 1, type: 0x8001, handle: '0000000000000001', payload: `22:operation past EOF; From: ${4 * GIB}, Len: 1, Size: ${4 * GIB}` },
    ]);
    wire.request(CMD.READ, 2 ** 63, 0xffffffff, { handle: 2 });
    expect((await wire.reply())[0]!.payload).toBe('22:len (4294967295 ) is larger than max len (33554432)');
    wire.request(CMD.BLOCK_STATUS, 0, 1, { handle: 3 });
    expect((await wire.reply())[0]!.payload).toBe('22:CMD_BLOCK_STATUS not negotiated');
    wire.close();
  });

  it('max-connections: the client over the limit waits, and is served once a slot frees', async () => {
    const local = await DaemonProcess.start(['-blockdev', 'driver=null-co,node-name=n0,size=1048576']);
    try {
      const client = await local.client();
      const limited = path.join(local.dir, 'limited.sock');
      await client.command({ execute: 'nbd-server-start', arguments: { addr: { type: 'unix', data: { path: limited } }, 'max-connections': 1 } });
      await client.command({ execute: 'block-export-add', arguments: { type: 'nbd', id: 'e0', 'node-name': 'n0' } });
      const first = await NbdWire.handshake(limited);
      const second = await NbdWire.connect(limited);
      first.wire.option(OPT.INFO, infoPayload('n0'));
      // A single connection allowed: no NBD_FLAG_CAN_MULTI_CONN (0x100) among the flags.
      const info = (await first.wire.optionReplies()).find((reply) => reply.payload.startsWith('0000'));
      expect(Number.parseInt(info!.payload.slice(-4), 16) & 0x100).toBe(0);
      first.wire.close();
      expect((await second.read(18)).subarray(0, 8).toString()).toBe('NBDMAGIC');
      second.close();
      client.close();
    } finally {
      await local.stop();
    }
  });
});
