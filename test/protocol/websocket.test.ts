import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonProcess, waitFor } from '../support/daemon.ts';
import { openWebSocket, startWithWebSocket } from '../support/websocket.ts';

const NOT_NEGOTIATED = '{"error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with \'qmp_capabilities\'"}}';
const NOT_AN_OBJECT = '{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}';

describe('WebSocket: token authentication, streaming framing, hostile frames', () => {
  let daemon: DaemonProcess;
  let dir: string;
  let tokenFile: string;
  let base: string;
  let token: string;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-ws-test-'));
    // The token's directory is open to everyone on purpose: only the file's own mode protects it.
    const shared = path.join(dir, 'shared');
    fs.mkdirSync(shared, { mode: 0o755 });
    fs.chmodSync(dir, 0o755);
    ({ daemon, base, token, tokenFile } = await startWithWebSocket(dir, { websocket: { allowedOrigins: ['http://good.example'] }, tokenDir: shared }));
  });
  afterAll(async () => {
    await daemon.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const alive = async () => {
    const client = await openWebSocket(`${base}?token=${token}`);
    expect(JSON.parse(await client.next())).toHaveProperty('QMP.capabilities');
    client.socket.close();
  };

  it('prints where the token is and keeps it owner-only (0600)', async () => {
    await waitFor(() => daemon.stderr.join('').includes(`token (?token= or Authorization: Bearer) in ${tokenFile}`), 10_000);
    expect(fs.statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it.each([
    ['no token', () => ['', {}] as const],
    ['a wrong token', () => [`?token=${token.slice(1)}`, {}] as const],
    ['an empty token', () => ['?token=', {}] as const],
    ['a wrong bearer token', () => ['', { headers: { authorization: `Bearer ${token.slice(1)}` } }] as const],
    ['an allowed Origin but no token', () => ['', { origin: 'http://good.example' }] as const],
  ])('refuses %s with 403', async (_name, request) => {
    const [query, options] = request();
    await expect(openWebSocket(`${base}${query}`, options)).rejects.toThrow('Unexpected server response: 403');
  });

  it('refuses a disallowed Origin even with the token', async () => {
    await expect(openWebSocket(`${base}?token=${token}`, { origin: 'http://evil.example' })).rejects.toThrow('Unexpected server response: 403');
  });

  it.each([
    ['the query', () => [`${base}?token=${token}`, {}] as const],
    ['an Authorization: Bearer header', () => [base, { headers: { authorization: `Bearer ${token}` } }] as const],
    ['the query from an allowed Origin', () => [`${base}?token=${token}`, { origin: 'http://good.example' }] as const],
  ])('greets a client presenting the token in %s', async (_name, target) => {
    const [url, options] = target();
    const client = await openWebSocket(url, options);
    expect(JSON.parse(await client.next())).toHaveProperty('QMP.version.qemu.major', 7);
    client.socket.send('{"execute":"qmp_capabilities"}');
    expect(await client.next()).toBe('{"return": {}}');
    client.socket.close();
  });

  // Another local user: run as nobody when this test runs as root (it can switch users).
  it.runIf(process.getuid?.() === 0)('another local user can neither read the token nor connect without it', () => {
    const asNobody = (program: string, ...args: string[]) =>
      spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', program, ...args], { encoding: 'utf8', timeout: 10_000, cwd: '/', env: { PATH: '/usr/bin:/bin' } });
    const read = asNobody('cat', tokenFile);
    expect(read.status).not.toBe(0);
    expect(read.stderr).toContain('Permission denied');
    const port = new URL(base).port;
    const handshake = asNobody('python3', '-c', `
import socket, sys
s = socket.create_connection(("127.0.0.1", ${port}))
s.sendall(b"GET / HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n")
sys.stdout.write(s.recv(100).decode().split("\\r\\n")[0])
`);
    expect(handshake.stdout, handshake.stderr).toBe('HTTP/1.1 403 Forbidden');
  });

  it('treats frames as chunks of one JSON stream: a request may span frames, a frame may hold several', async () => {
    const client = await openWebSocket(`${base}?token=${token}`);
    await client.next();
    client.socket.send('{"execute":');
    client.socket.send('"qmp_capabilities"');
    client.socket.send('}');
    expect(await client.next()).toBe('{"return": {}}');
    client.socket.send('{"execute":"query-version","id":1} {"execute":"query-version","id":2}{"execute":"query-version",');
    expect(JSON.parse(await client.next()).id).toBe(1);
    expect(JSON.parse(await client.next()).id).toBe(2);
    client.socket.send('"id":3}');
    expect(JSON.parse(await client.next()).id).toBe(3);
    client.socket.send(Buffer.from('{"execute":"query-version","id":"\xc3', 'latin1'));
    client.socket.send(Buffer.from('\xa9"}', 'latin1'));
    expect(JSON.parse(await client.next()).id).toBe('\u00e9');
    client.socket.close();
  });

  it('survives one frame of 130,000 values before negotiation and answers each', async () => {
    const client = await openWebSocket(`${base}?token=${token}`);
    await client.next();
    client.socket.send('1 '.repeat(130_000));
    for (let i = 0; i < 130_000; i++) expect(await client.next()).toBe(NOT_AN_OBJECT);
    client.socket.send('{"execute":"query-version"}');
    expect(await client.next()).toBe(NOT_NEGOTIATED);
    client.socket.close();
    await alive();
  }, 60_000);

  it('survives the same bytes on the monitor socket', async () => {
    const client = await daemon.connect();
    await client.readLine();
    client.send('1 '.repeat(130_000));
    for (let i = 0; i < 130_000; i++) expect(await client.readLine()).toBe(NOT_AN_OBJECT);
    client.close();
    await alive();
  }, 60_000);
});
