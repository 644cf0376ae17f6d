import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ExportManager } from '../../../src/block/exports.ts';
import { BlockGraph } from '../../../src/block/graph.ts';
import { NbdServer } from '../../../src/nbd/server.ts';
import { CMD, NbdWire, OPT, infoPayload } from '../../support/nbd-client.ts';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

describe('NBD traffic and the idle-time memory trim', () => {
  it('counts every request a client sends as activity, and the handshake not at all', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-nbd-activity-'));
    const graph = new BlockGraph();
    graph.addBlockdev({ driver: 'null-co', 'node-name': 'n0', size: 1 << 20 });
    const exports = new ExportManager(graph, () => {});
    let requests = 0;
    const server = new NbdServer(exports, () => requests++);
    const socket = path.join(dir, 'nbd.sock');
    await server.start({ addr: { type: 'unix', data: { path: socket } } });
    exports.add({ type: 'nbd', id: 'e0', 'node-name': 'n0' });
    cleanups.push(() => {
      server.stop();
      graph.closeAll();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    const { wire } = await NbdWire.handshake(socket);
    wire.option(OPT.STRUCTURED_REPLY);
    await wire.optionReplies();
    wire.option(OPT.GO, infoPayload('n0'));
    await wire.optionReplies();
    expect(requests).toBe(0);
    for (let handle = 1; handle <= 3; handle++) {
      wire.request(CMD.READ, 0, 4096, { handle });
      await wire.reply();
    }
    expect(requests).toBe(3);
    wire.close();
  });
});
