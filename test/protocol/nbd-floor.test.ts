import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CMD, NbdWire, OPT, lstr } from '../support/nbd-client.ts';

const REPO = path.resolve(import.meta.dirname, '../..');

/** bench/nbd-floor.ts, the bench's bare Node NBD server, on each transport: a client that breaks the protocol is hung up on, and the server goes on. */
describe.each(['stream', 'handle'])('bench/nbd-floor.ts (%s transport) under hostile clients', (transport) => {
  let dir: string;
  let floor: ChildProcess;
  let socket: string;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-floor-test-'));
    fs.writeFileSync(path.join(dir, 'data.raw'), Buffer.alloc(1 << 20, 0x5a));
    fs.writeFileSync(path.join(dir, 'map.json'), JSON.stringify([{ start: 0, length: 1 << 20, data: false }]));
    socket = path.join(dir, 'floor.sock');
    floor = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, 'bench/nbd-floor.ts'), socket, path.join(dir, 'data.raw'), path.join(dir, 'map.json'), transport], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve) => floor.stdout!.once('data', resolve));
  });
  afterAll(() => {
    floor.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function negotiated(): Promise<NbdWire> {
    const { wire } = await NbdWire.handshake(socket);
    wire.option(OPT.STRUCTURED_REPLY);
    await wire.optionReply();
    wire.option(OPT.GO, Buffer.concat([lstr('data'), Buffer.from([0, 0])]));
    await wire.optionReplies();
    return wire;
  }

  it('hangs up on a truncated option, a huge option length, a read past the end or too long, and serves the next client', async () => {
    const hostile: Array<(wire: NbdWire) => void> = [
      (wire) => wire.option(OPT.SET_META, Buffer.from('xx')),
      (wire) => wire.option(OPT.INFO, Buffer.alloc(0), 0xffffffff),
    ];
    for (const attack of hostile) {
      const { wire } = await NbdWire.handshake(socket);
      attack(wire);
      expect(await wire.waitClosed()).toBe(true);
    }
    for (const [offset, length] of [[(1 << 20) - 512, 4096], [0, 0xffffffff]]) {
      const wire = await negotiated();
      wire.request(CMD.READ, offset!, length!);
      expect(await wire.waitClosed()).toBe(true);
    }
    const wire = await negotiated();
    wire.request(CMD.READ, 4096, 512);
    const [chunk] = await wire.reply();
    expect(chunk!.payload).toBe('0000000000001000' + '5a'.repeat(512));
    wire.close();
    expect(floor.exitCode).toBe(null);
  });
});
