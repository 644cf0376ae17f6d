import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonProcess, QBLOCKD } from '../support/daemon.ts';
import { openWebSocket, startWithWebSocket } from '../support/websocket.ts';

// Event order and texts as QEMU 7.2 sent them (BLOCK_EXPORT_DELETED before the block-export-del reply).
describe('the daemon: several clients, WebSocket, socket files, signals', () => {
  let daemon: DaemonProcess;
  let dir: string;
  let url: string;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-daemon-test-'));
    const started = await startWithWebSocket(dir, {
      websocket: { allowedOrigins: ['http://good.example'] },
      args: ['--concurrent-clients', '-blockdev', 'driver=null-co,node-name=n0,size=1048576'],
    });
    daemon = started.daemon;
    url = `${started.base}?token=${started.token}`;
  });
  afterAll(async () => {
    await daemon.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('creates the monitor socket owner-only', () => {
    expect(fs.statSync(daemon.socketPath).mode & 0o777).toBe(0o600);
  });

  it('keeps negotiation state per client and sends events only to negotiated ones', async () => {
    const negotiated = await daemon.client();
    const waiting = await daemon.connect();
    await waiting.readLine();
    expect(JSON.parse(await waiting.exchange('{"execute":"query-version"}\n')).error.desc).toBe("Expecting capabilities negotiation with 'qmp_capabilities'");
    const sock = path.join(dir, 'nbd.sock');
    await negotiated.command({ execute: 'nbd-server-start', arguments: { addr: { type: 'unix', data: { path: sock } } } });
    await negotiated.command({ execute: 'block-export-add', arguments: { type: 'nbd', id: 'e0', 'node-name': 'n0' } });
    // An export nobody is connected to goes at once: its event comes before the reply.
    expect(JSON.parse(await negotiated.exchange('{"execute":"block-export-del","arguments":{"id":"e0"}}\n'))).toMatchObject({
      event: 'BLOCK_EXPORT_DELETED',
      data: { id: 'e0' },
    });
    expect(await negotiated.readLine()).toBe('{"return": {}}');
    expect(await waiting.exchange('{"execute":"qmp_capabilities"}\n')).toBe('{"return": {}}');
    await negotiated.command({ execute: 'nbd-server-stop' });
    negotiated.close();
    waiting.close();
  });

  it('serves the same session over WebSocket, one message per frame', async () => {
    const ws = await openWebSocket(url);
    expect(JSON.parse(await ws.next())).toHaveProperty('QMP.capabilities', ['oob']);
    ws.socket.send('{"execute":"qmp_capabilities"}');
    expect(await ws.next()).toBe('{"return": {}}');
    ws.socket.send('{"execute":"block-dirty-bitmap-add","arguments":{"node":"n0","name":"ws"}}');
    expect(await ws.next()).toBe('{"return": {}}');
    ws.socket.send('{"execute":"query-version","id":1}{"execute":"query-version","id":2}');
    expect(JSON.parse(await ws.next()).id).toBe(1);
    expect(JSON.parse(await ws.next()).id).toBe(2);

    const unix = await daemon.client();
    const nodes = await unix.command({ execute: 'query-named-block-nodes' });
    expect(nodes.return[0]['dirty-bitmaps'].map((b: { name: string }) => b.name)).toContain('ws');
    unix.close();
    ws.socket.close();
  });

  it('lets in an allowed browser Origin with the token and refuses any other Origin, token or not', async () => {
    const allowed = await openWebSocket(url, { origin: 'http://good.example' });
    expect(JSON.parse(await allowed.next())).toHaveProperty('QMP');
    allowed.socket.close();
    await expect(openWebSocket(url, { origin: 'http://evil.example' })).rejects.toThrow(/Unexpected server response: 403/);
  });

  it('refuses to start on a socket another live daemon answers on, naming it', () => {
    const second = spawnSync(QBLOCKD, ['-qmp', `unix:${daemon.socketPath},server=on,wait=off`], { encoding: 'utf8', timeout: 20_000 });
    expect(second.status).not.toBe(0);
    expect(second.stderr).toContain(`Failed to bind socket to ${daemon.socketPath}: another process is listening on it`);
  });

  it('replaces a stale socket file left by a dead daemon', async () => {
    const stale = path.join(dir, 'stale.sock');
    // A process that bound the socket and died leaves the file with nobody listening.
    execFileSync('python3', ['-c', 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', stale]);
    expect(fs.statSync(stale).isSocket()).toBe(true);
    const other = await DaemonProcess.start([], { socketPath: stale });
    // The file exists from the start; wait until the new daemon answers on it.
    let client: Awaited<ReturnType<DaemonProcess['client']>> | undefined;
    for (let tries = 0; !client; tries++) {
      client = await other.client().catch((error) => {
        if (tries > 500) throw error;
        return new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 20));
      });
    }
    expect((await client.command({ execute: 'query-version' })).return.qemu.major).toBe(7);
    client.close();
    await other.stop();
  });

  it('shuts down on SIGTERM as quit does: SHUTDOWN with reason host-signal, exit 0', async () => {
    const other = await DaemonProcess.start();
    const client = await other.client();
    other.child.kill('SIGTERM');
    const event = JSON.parse(await client.readLine());
    expect(event).toMatchObject({ event: 'SHUTDOWN', data: { guest: false, reason: 'host-signal' } });
    expect(await other.exited()).toBe(0);
    expect(fs.existsSync(other.socketPath)).toBe(false);
    await other.stop();
  });
});

describe('the launcher, bin/qblockd', () => {
  it('runs the TypeScript sources through tsx (QBLOCKD_NO_BUNDLE=1) from any working directory', () => {
    const result = spawnSync(QBLOCKD, ['--version'], { cwd: os.tmpdir(), encoding: 'utf8', env: { ...process.env, QBLOCKD_NO_BUNDLE: '1' } });
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^qblockd \d+\.\d+\.\d+ \(QEMU 7\.2 QMP emulation\)\n$/);
    expect(result.status).toBe(0);
  });
});
