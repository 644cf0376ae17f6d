import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DaemonProcess, waitFor } from '../support/daemon.ts';
import { openWebSocket, startWithWebSocket } from '../support/websocket.ts';

/** A figure from /proc/PID/status, in bytes (VmRSS now, VmHWM the peak so far). */
function memory(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match![1]) * 1024;
}

/** Bytes the process has read through read(2)/recv(2) so far (/proc/PID/io rchar). */
function bytesRead(pid: number): number {
  return Number(/^rchar: (\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/io`, 'utf8'))![1]);
}

/** Polls `read` until it has not changed for a while: the peer stopped taking bytes. */
async function settled(read: () => number): Promise<number> {
  let last = -1;
  for (let unchanged = 0, polls = 0; unchanged < 5 && polls < 300; polls++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const now = read();
    unchanged = now === last ? unchanged + 1 : 0;
    last = now;
  }
  return last;
}

const MiB = 1 << 20;
const REQUEST = '{"execute":"query-version"}\n';
const FLOOD = REQUEST.repeat(Math.ceil(MiB / REQUEST.length));

describe('a client that sends without reading holds bounded memory, on every transport', () => {
  let daemon: DaemonProcess | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await daemon?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function start(config: Record<string, unknown>): Promise<DaemonProcess> {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-flow-test-'));
    const file = path.join(dir, 'config.json');
    fs.writeFileSync(file, JSON.stringify({ monitors: [], ...config }));
    daemon = await DaemonProcess.start(['--config', file, '--concurrent-clients']);
    return daemon;
  }

  it('WebSocket: the daemon stops reading once behind, and RSS levels off', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-flow-test-'));
    const started = await startWithWebSocket(dir);
    const pid = started.daemon.child.pid!;
    daemon = started.daemon;
    const client = await openWebSocket(`${started.base}?token=${started.token}`);
    await client.next();
    client.socket.send('{"execute":"qmp_capabilities"}');
    await client.next();
    const baseline = memory(pid, 'VmRSS');
    const readBefore = bytesRead(pid);
    client.socket.pause();
    for (let i = 0; i < 64; i++) client.socket.send(FLOOD);
    const taken = (await settled(() => bytesRead(pid))) - readBefore;
    expect(taken).toBeLessThan(24 * MiB);
    expect(memory(pid, 'VmRSS') - baseline).toBeLessThan(100 * MiB);
    client.socket.terminate();
  }, 120_000);

  it('Unix socket: the same', async () => {
    const daemon = await start({});
    const client = await daemon.client();
    const baseline = memory(daemon.child.pid!, 'VmRSS');
    const readBefore = bytesRead(daemon.child.pid!);
    client.socket.pause();
    for (let i = 0; i < 64; i++) client.send(FLOOD);
    const taken = (await settled(() => bytesRead(daemon.child.pid!))) - readBefore;
    expect(taken).toBeLessThan(24 * MiB);
    expect(memory(daemon.child.pid!, 'VmRSS') - baseline).toBeLessThan(100 * MiB);
    client.close();
  }, 120_000);

  it('a client that never reads its events is disconnected once maxUnreadOutputBytes wait, and the daemon goes on', async () => {
    const daemon = await start({ limits: { maxUnreadOutputBytes: 256 << 10 }, blockdevs: [{ driver: 'null-co', 'node-name': 'n0', size: 1048576 }] });
    const sleeper = await daemon.client();
    sleeper.socket.pause();
    const worker = await daemon.client();
    await worker.command({ execute: 'nbd-server-start', arguments: { addr: { type: 'unix', data: { path: path.join(dir!, 'nbd.sock') } } } });
    const warned = () => daemon.stderr.join('').includes('disconnected a client that left too much output unread');
    let events = 0;
    while (!warned() && events < 100_000) {
      await worker.command({ execute: 'block-export-add', arguments: { type: 'nbd', id: 'e0', 'node-name': 'n0' } });
      await worker.command({ execute: 'block-export-del', arguments: { id: 'e0' } });
      events++;
    }
    expect(warned()).toBe(true);
    // 256 KiB of ~110-byte events, plus what the kernel's socket buffers held.
    expect(events).toBeGreaterThan((256 << 10) / 200);
    sleeper.socket.resume();
    await waitFor(() => sleeper.closed, 10_000);
    expect((await worker.command({ execute: 'query-block-exports' })).return).toEqual([]);
    worker.close();
  }, 120_000);
});

describe('memory per request stays proportional to its bytes', () => {
  let daemon: DaemonProcess;
  afterEach(() => daemon.stop());

  // Bounds are peak RSS growth over the request's size. One string costs its received
  // bytes, its text and its reply (3x measured); a million strings add a JS string and a
  // token entry each (3.8x measured). The byte-per-number lexer took 36x.
  it.each([
    ['a 60 MiB string echoed back as the id', (n: number) => `{"execute":"query-version","id":"${'a'.repeat(n)}"}\n`, true, 4],
    // 2M tokens: just within QEMU's token count limit.
    ['a 60 MiB array of a million strings', (n: number) => `{"execute":"query-version","arguments":{"x":[${`"${'b'.repeat(Math.floor(n / 1_000_000) - 3)}",`.repeat(999_999)}"b"]}}\n`, false, 5],
  ] as const)('%s', async (_name, request, echoed, bound) => {
    daemon = await DaemonProcess.start();
    const client = await daemon.client();
    const baseline = memory(daemon.child.pid!, 'VmHWM');
    const size = 60 * MiB;
    const text = request(size);
    // The reply is counted, not kept: only the daemon's memory is measured.
    let replyBytes = 0;
    let tail = '';
    client.socket.removeAllListeners('data');
    const replied = new Promise<void>((resolve) =>
      client.socket.on('data', (chunk: Buffer) => {
        replyBytes += chunk.length;
        tail = (tail + chunk.toString('latin1')).slice(-200);
        if (tail.endsWith('\r\n')) resolve();
      }),
    );
    client.send(text);
    await replied;
    if (echoed) expect(replyBytes).toBeGreaterThan(size);
    else expect(tail).toBe('{"error": {"class": "GenericError", "desc": "Parameter \'x\' is unexpected"}}\r\n');
    const peak = memory(daemon.child.pid!, 'VmHWM');
    expect(peak - baseline).toBeLessThan(bound * text.length);
    client.close();
  }, 180_000);
});
