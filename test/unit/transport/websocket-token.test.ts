import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultTokenPath, newWebSocketToken, writeTokenFile } from '../../../src/transport/websocket-token.ts';

describe('WebSocket token file', () => {
  let dir: string;
  const runtime = process.env.XDG_RUNTIME_DIR;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-token-test-'));
  });
  afterEach(() => {
    if (runtime === undefined) delete process.env.XDG_RUNTIME_DIR;
    else process.env.XDG_RUNTIME_DIR = runtime;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('draws a new 256-bit token each time', () => {
    const a = newWebSocketToken();
    expect(Buffer.from(a, 'base64url')).toHaveLength(32);
    expect(newWebSocketToken()).not.toBe(a);
  });

  it('replaces a planted symlink instead of writing through it, and leaves the file 0600', () => {
    const victim = path.join(dir, 'victim');
    fs.writeFileSync(victim, 'precious');
    const file = path.join(dir, 'ws.token');
    fs.symlinkSync(victim, file);
    writeTokenFile(file, 'secret');
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious');
    expect(fs.lstatSync(file).isFile()).toBe(true);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(file, 'utf8')).toBe('secret\n');
    expect(fs.readdirSync(dir).sort()).toEqual(['victim', 'ws.token']);
  });

  it('puts the default file in a 0700 directory of the runtime dir, and refuses one others can enter', () => {
    process.env.XDG_RUNTIME_DIR = dir;
    expect(defaultTokenPath(4444)).toBe(path.join(dir, 'qblockd', 'websocket-4444.token'));
    expect(fs.statSync(path.join(dir, 'qblockd')).mode & 0o777).toBe(0o700);
    fs.chmodSync(path.join(dir, 'qblockd'), 0o755);
    expect(() => defaultTokenPath(4444)).toThrow(`WebSocket token directory ${path.join(dir, 'qblockd')} must be a directory owned by this user with mode 0700`);
  });
});
