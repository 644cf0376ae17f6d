import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonProcess, QBLOCKD, waitFor, type RawClient } from '../support/daemon.ts';
import { NbdWire, OPT, infoPayload } from '../support/nbd-client.ts';
import { openWebSocket, type WebSocketClient } from '../support/websocket.ts';

const TIB16 = 2 ** 44;

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, { headers }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    }).on('error', reject);
  });
}

/** A WebSocket QMP client that answers commands in order and keeps events aside. */
async function webClient(url: string): Promise<{ ws: WebSocketClient; command(request: object): Promise<any>; events: any[] }> {
  const ws = await openWebSocket(url);
  const events: any[] = [];
  await ws.next();
  const command = async (request: object) => {
    ws.socket.send(JSON.stringify(request));
    for (;;) {
      const message = JSON.parse(await ws.next());
      if ('event' in message) events.push(message);
      else return message;
    }
  };
  await command({ execute: 'qmp_capabilities' });
  return { ws, command, events };
}

/** Reads frames until an event matching `wanted` arrives. */
async function nextEvent(client: { ws: WebSocketClient; events: any[] }, wanted: (event: any) => boolean): Promise<any> {
  for (;;) {
    const index = client.events.findIndex(wanted);
    if (index >= 0) return client.events.splice(index, 1)[0];
    client.events.push(JSON.parse(await client.ws.next()));
  }
}

describe('the web view: page, token, x-qblockd commands and events', () => {
  let daemon: DaemonProcess;
  let pageUrl: URL;
  let wsUrl: string;
  let ordinary: RawClient;

  beforeAll(async () => {
    daemon = await DaemonProcess.start(['--web', '--blockdev', JSON.stringify({ driver: 'null-co', 'node-name': 'disk0', size: TIB16 })]);
    await waitFor(() => /web view at (\S+)/.test(daemon.stderr.join('')), 10_000);
    pageUrl = new URL(/web view at (\S+)/.exec(daemon.stderr.join(''))![1]!);
    wsUrl = `ws://${pageUrl.host}/?token=${pageUrl.searchParams.get('token')}`;
    ordinary = await daemon.client();
  });
  afterAll(async () => {
    ordinary?.close();
    await daemon.stop();
  });

  it('prints a loopback URL carrying the token', () => {
    expect(pageUrl.protocol).toBe('http:');
    expect(pageUrl.hostname).toBe('127.0.0.1');
    expect(pageUrl.searchParams.get('token')).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('serves the page, script and style inline, only with the token', async () => {
    const page = await get(pageUrl.href);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    expect(page.headers['content-security-policy']).toMatch(/default-src 'none'; script-src 'sha256-/);
    expect(page.body).toContain('x-qblockd-watch');
    expect(page.body).not.toMatch(/<script src|<link /);
    const token = pageUrl.searchParams.get('token')!;
    expect((await get(`http://${pageUrl.host}/`, { authorization: `Bearer ${token}` })).status).toBe(200);
    expect((await get(`http://${pageUrl.host}/app.js?token=${token}`)).status).toBe(404);
  });

  it('refuses the page and the WebSocket without the right token: 403', async () => {
    const token = pageUrl.searchParams.get('token')!;
    const wrong = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    for (const url of [`http://${pageUrl.host}/`, `http://${pageUrl.host}/?token=${wrong}`, `http://${pageUrl.host}/app.js`, `http://${pageUrl.host}/?token=`]) {
      const reply = await get(url);
      expect(reply.status, url).toBe(403);
      expect(reply.body).not.toContain('qblockd');
    }
    expect((await get(`http://${pageUrl.host}/`, { authorization: `Bearer ${wrong}` })).status).toBe(403);
    await expect(openWebSocket(`ws://${pageUrl.host}/`)).rejects.toThrow(/Unexpected server response: 403/);
    await expect(openWebSocket(`ws://${pageUrl.host}/?token=${wrong}`)).rejects.toThrow(/Unexpected server response: 403/);
    // The page's own origin is let in (with the token); any other origin is not.
    const own = await openWebSocket(wsUrl, { origin: `http://${pageUrl.host}` });
    own.socket.close();
    await expect(openWebSocket(wsUrl, { origin: 'http://evil.example' })).rejects.toThrow(/Unexpected server response: 403/);
  });

  it('shows ordinary clients QEMU\'s commands only; a watcher sees the x- ones with the unstable feature', async () => {
    const ours = ['x-qblockd-watch', 'x-qblockd-query-graph', 'x-qblockd-dirty-map', 'x-qblockd-query-clients', 'x-qblockd-query-exports', 'X_QBLOCKD_BITMAP_CHANGED', 'X_QBLOCKD_GRAPH_CHANGED'];
    const names = (list: Array<{ name: string }>) => list.map((entry) => entry.name);
    const plainCommands = names((await ordinary.command({ execute: 'query-commands' })).return);
    const plainSchema = (await ordinary.command({ execute: 'query-qmp-schema' })).return as Array<{ name: string; features?: string[] }>;
    expect(plainCommands).toContain('block-dirty-bitmap-add');
    expect(plainCommands.filter((name) => /qblockd/i.test(name))).toEqual([]);
    expect(plainSchema.filter((entry) => /qblockd/i.test(entry.name))).toEqual([]);

    const watcher = await webClient(wsUrl);
    expect(names((await watcher.command({ execute: 'query-commands' })).return)).toEqual(plainCommands);
    await watcher.command({ execute: 'x-qblockd-watch' });
    const schema = (await watcher.command({ execute: 'query-qmp-schema' })).return as Array<{ name: string; features?: string[] }>;
    for (const name of ours) expect(schema.find((entry) => entry.name === name)?.features, name).toEqual(['unstable']);
    expect(schema.find((entry) => entry.name === 'block-dirty-bitmap-add')).not.toHaveProperty('features');
    expect(names((await watcher.command({ execute: 'query-commands' })).return)).toEqual([...plainCommands, ...ours.filter((name) => name.startsWith('x-'))]);
    watcher.ws.socket.close();
  });

  it('tells watchers of graph and bitmap changes, draws the dirty map, and tells ordinary clients nothing new', async () => {
    const watcher = await webClient(wsUrl);
    expect(await watcher.command({ execute: 'x-qblockd-watch' })).toEqual({ return: {} });
    // The ordinary client's next line after each command must be its reply: no event of any kind in between.
    const plain = async (request: object) => {
      ordinary.send(JSON.stringify(request) + '\n');
      return JSON.parse(await ordinary.readLine());
    };
    const hmp = (line: string) => plain({ execute: 'human-monitor-command', arguments: { 'command-line': line } });

    expect(await plain({ execute: 'block-dirty-bitmap-add', arguments: { node: 'disk0', name: 'b0' } })).toEqual({ return: {} });
    await nextEvent(watcher, (event) => event.event === 'X_QBLOCKD_GRAPH_CHANGED');
    const graph = (await watcher.command({ execute: 'x-qblockd-query-graph' })).return;
    expect(graph).toEqual([
      {
        'node-name': 'disk0', driver: 'null-co', size: TIB16, 'read-only': false, children: [],
        bitmaps: [{ name: 'b0', granularity: 65536, count: 0, recording: true, enabled: true, persistent: false, busy: false, readonly: false, inconsistent: false }],
      },
    ]);

    expect(await hmp('qemu-io disk0 "write 0 1M"')).toEqual({ return: '' });
    const bitmapChanged = (count: number) => (event: any) => event.event === 'X_QBLOCKD_BITMAP_CHANGED' && event.data.count === count;
    let changed = await nextEvent(watcher, bitmapChanged(1048576));
    expect(changed.data).toEqual({ node: 'disk0', name: 'b0', count: 1048576 });
    expect(await hmp('qemu-io disk0 "write -z -n 8T 4T"')).toEqual({ return: '' });
    changed = await nextEvent(watcher, bitmapChanged(1048576 + 4 * 2 ** 40));
    expect(changed.data).toEqual({ node: 'disk0', name: 'b0', count: 1048576 + 4 * 2 ** 40 });

    const map = (await watcher.command({ execute: 'x-qblockd-dirty-map', arguments: { node: 'disk0', name: 'b0', width: 16 } })).return;
    expect(map).toMatchObject({ offset: 0, length: TIB16, granularity: 65536, count: 1048576 + 4 * 2 ** 40 });
    // 1 TiB per pixel: 1 MiB in the first, 8..12 TiB full.
    expect([...Buffer.from(map.density, 'base64')]).toEqual([1, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 0]);
    const zoomed = (await watcher.command({ execute: 'x-qblockd-dirty-map', arguments: { node: 'disk0', name: 'b0', offset: 0, length: 4 << 20, width: 4 } })).return;
    expect([...Buffer.from(zoomed.density, 'base64')]).toEqual([255, 0, 0, 0]);
    expect(await watcher.command({ execute: 'x-qblockd-dirty-map', arguments: { node: 'disk0', name: 'nope', width: 4 } })).toEqual({
      error: { class: 'GenericError', desc: "Dirty bitmap 'nope' not found" },
    });

    watcher.events.length = 0;
    expect(await plain({ execute: 'block-dirty-bitmap-clear', arguments: { node: 'disk0', name: 'b0' } })).toEqual({ return: {} });
    changed = await nextEvent(watcher, bitmapChanged(0));
    expect(changed.data).toEqual({ node: 'disk0', name: 'b0', count: 0 });

    const clients = (await watcher.command({ execute: 'x-qblockd-query-clients' })).return;
    expect(clients).toEqual(expect.arrayContaining([expect.objectContaining({ transport: 'unix', watching: false }), expect.objectContaining({ transport: 'websocket', watching: true })]));

    watcher.events.length = 0;
    expect(await plain({ execute: 'block-dirty-bitmap-remove', arguments: { node: 'disk0', name: 'b0' } })).toEqual({ return: {} });
    await nextEvent(watcher, (event) => event.event === 'X_QBLOCKD_GRAPH_CHANGED');
    // Once the watcher has heard of the removal, the ordinary client still has nothing waiting but this reply.
    expect(await plain({ execute: 'query-version', id: 'after' })).toHaveProperty('id', 'after');
    watcher.ws.socket.close();
  });
});

describe('NBD clients of exports reach watchers', () => {
  it('tells watchers when a client attaches to an export and when it leaves, and counts it per export', async () => {
    const daemon = await DaemonProcess.start(['--web', '--blockdev', JSON.stringify({ driver: 'null-co', 'node-name': 'disk0', size: 1 << 30 })]);
    try {
      await waitFor(() => /web view at (\S+)/.test(daemon.stderr.join('')), 10_000);
      const page = new URL(/web view at (\S+)/.exec(daemon.stderr.join(''))![1]!);
      const watcher = await webClient(`ws://${page.host}/?token=${page.searchParams.get('token')}`);
      await watcher.command({ execute: 'x-qblockd-watch' });
      const socket = path.join(daemon.dir, 'nbd.sock');
      await watcher.command({ execute: 'nbd-server-start', arguments: { addr: { type: 'unix', data: { path: socket } } } });
      await watcher.command({ execute: 'block-export-add', arguments: { type: 'nbd', id: 'e0', 'node-name': 'disk0', name: 'disk' } });
      const exports = async () => (await watcher.command({ execute: 'x-qblockd-query-exports' })).return;
      expect(await exports()).toEqual([
        { id: 'e0', type: 'nbd', name: 'disk', 'node-name': 'disk0', writable: false, 'shutting-down': false, bitmaps: [], clients: 0 },
      ]);
      watcher.events.length = 0;
      const { wire } = await NbdWire.handshake(socket);
      wire.option(OPT.GO, infoPayload('disk'));
      await wire.optionReplies();
      await nextEvent(watcher, (event) => event.event === 'X_QBLOCKD_GRAPH_CHANGED');
      expect((await exports())[0].clients).toBe(1);
      watcher.events.length = 0;
      wire.close();
      await nextEvent(watcher, (event) => event.event === 'X_QBLOCKD_GRAPH_CHANGED');
      expect((await exports())[0].clients).toBe(0);
      watcher.ws.socket.close();
    } finally {
      await daemon.stop();
    }
  });
});

describe('job progress reaches watchers without any command', () => {
  it('sends X_QBLOCKD_GRAPH_CHANGED while a backup job runs, each time with new progress', async () => {
    const daemon = await DaemonProcess.start(['--web', '-blockdev', 'driver=null-co,node-name=src,size=536870912', '-blockdev', 'driver=null-co,node-name=tgt,size=536870912']);
    try {
      await waitFor(() => /web view at (\S+)/.test(daemon.stderr.join('')), 10_000);
      const page = new URL(/web view at (\S+)/.exec(daemon.stderr.join(''))![1]!);
      const watcher = await webClient(`ws://${page.host}/?token=${page.searchParams.get('token')}`);
      await watcher.command({ execute: 'x-qblockd-watch' });
      const started = await watcher.command({
        execute: 'blockdev-backup',
        arguments: { 'job-id': 'j0', device: 'src', target: 'tgt', sync: 'full', speed: 128 << 20 },
      });
      expect(started).toEqual({ return: {} });
      const seen: number[] = [];
      while (seen.length < 3) {
        await nextEvent(watcher, (event) => event.event === 'X_QBLOCKD_GRAPH_CHANGED');
        const [job] = (await watcher.command({ execute: 'query-jobs' })).return;
        if (job?.status === 'running' && job['current-progress'] > (seen.at(-1) ?? 0)) seen.push(job['current-progress']);
      }
      expect(seen[2]).toBeGreaterThan(seen[0]!);
      expect(await watcher.command({ execute: 'block-job-cancel', arguments: { device: 'j0' } })).toEqual({ return: {} });
      watcher.ws.socket.close();
    } finally {
      await daemon.stop();
    }
  }, 30_000);
});

describe('the web view stays on loopback', () => {
  it('refuses to start on a WebSocket host other than a loopback address', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-web-test-'));
    const config = path.join(dir, 'config.json');
    fs.writeFileSync(config, JSON.stringify({ monitors: [], web: true, websocket: { host: '0.0.0.0', port: 0 } }));
    const result = spawnSync(QBLOCKD, ['--config', config], { encoding: 'utf8', timeout: 20_000 });
    fs.rmSync(dir, { recursive: true, force: true });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('qblockd: the web view is served on loopback addresses only, not on websocket host 0.0.0.0\n');
  });
});
