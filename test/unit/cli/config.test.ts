import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../../src/cli/index.ts';
import { applyCommandLine, ConfigError, loadConfig } from '../../../src/config/index.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-config-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

let files = 0;
function configFile(content: unknown): string {
  const file = path.join(dir, `c${files++}.json`);
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}
function loadError(content: unknown): string {
  const file = configFile(content);
  try {
    loadConfig(file);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message.replace(file, 'FILE');
  }
  throw new Error('config accepted');
}

describe('loadConfig', () => {
  it('embeds config/default.json: one socket, one 1 GiB null-co node, QEMU 7.2.22', () => {
    const config = loadConfig(undefined);
    expect(config.monitors).toEqual([{ endpoint: { kind: 'listen', path: '/tmp/qblockd.sock' }, pretty: false, concurrentClients: true }]);
    expect(config.socketMode).toBe(0o600);
    expect(config.blockdevs).toEqual([{ syntax: 'json', value: { driver: 'null-co', 'node-name': 'disk0', size: 1073741824 } }]);
    expect(config.drives).toEqual([]);
    expect(config.log).toEqual({ level: 'info', destination: 'stderr' });
    expect(config.version).toEqual({ qemu: { major: 7, minor: 2, micro: 22 }, package: 'qblockd 0.1.0' });
    expect(config.websocket).toBeUndefined();
    expect(config.commandLine).toBe('replace');
  });

  it('the built-in default validates against config/schema.json', () => {
    const file = configFile(fs.readFileSync(new URL('../../../config/default.json', import.meta.url), 'utf8'));
    expect(() => loadConfig(file)).not.toThrow();
  });

  it('overlays a file key by key, merging log and version one level down', () => {
    const config = loadConfig(
      configFile({
        socketMode: '0660',
        log: { level: 'debug' },
        version: { package: 'custom' },
        websocket: { port: 4700 },
        monitors: [{ path: '/run/q.sock', pretty: true, id: 'm' }],
        blockdevs: ['null-co,node-name=n0,size=1M', { driver: 'null-co', 'node-name': 'n1' }],
        drives: ['if=none,id=d0,driver=null-co', { if: 'none', id: 'd1', driver: 'null-co' }],
        limits: { maxPendingInputBytes: 1024 },
      }),
    );
    expect(config.socketMode).toBe(0o660);
    expect(config.log).toEqual({ level: 'debug', destination: 'stderr' });
    expect(config.version).toEqual({ qemu: { major: 7, minor: 2, micro: 22 }, package: 'custom' });
    expect(config.websocket).toEqual({ host: '127.0.0.1', port: 4700, allowedOrigins: [] });
    expect(config.monitors).toEqual([{ id: 'm', endpoint: { kind: 'listen', path: '/run/q.sock' }, pretty: true, concurrentClients: false }]);
    expect(config.blockdevs).toEqual([
      { syntax: 'keyval', value: { driver: 'null-co', 'node-name': 'n0', size: '1M' } },
      { syntax: 'json', value: { driver: 'null-co', 'node-name': 'n1' } },
    ]);
    expect(config.drives.map((d) => d.options)).toEqual([
      { if: 'none', id: 'd0', driver: 'null-co' },
      { if: 'none', id: 'd1', driver: 'null-co' },
    ]);
    expect(config.limits).toEqual({ maxPendingInputBytes: 1024 });
    expect(config.commandLine).toBe('append');
  });

  it('accepts every spelling of the socket mode', () => {
    for (const mode of [384, '0600', '600', '0o600']) expect(loadConfig(configFile({ socketMode: mode })).socketMode).toBe(0o600);
  });

  it.each([
    [{ foo: 1 }, "config FILE: unknown key 'foo'"],
    [{ log: { level: 'loud' } }, "config FILE: key 'log.level' must be one of: fatal, error, warn, info, debug, trace, silent"],
    [{ log: { colour: true } }, "config FILE: unknown key 'log.colour'"],
    [{ websocket: { host: 'x' } }, "config FILE: key 'websocket.port' is missing"],
    [{ websocket: { port: 70000 } }, "config FILE: key 'websocket.port' must be <= 65535"],
    [{ monitors: [{ path: '/x', wait: true }] }, "config FILE: key 'monitors[0].wait' must be false"],
    [{ monitors: [{}] }, "config FILE: key 'monitors[0].path' is missing"],
    [{ blockdevs: [{ size: 1 }] }, "config FILE: key 'blockdevs[0].driver' is missing"],
    [{ blockdevs: [3] }, "config FILE: key 'blockdevs[0]' must be of type object or string"],
    [{ blockdevs: ['null-co,a.1=x'] }, "config FILE: key 'blockdevs[0]': Parameter 'a.0' missing"],
    [{ version: { qemu: { major: 7 } } }, "config FILE: key 'version.qemu.minor' is missing"],
    [{ socketMode: 'rw' }, `config FILE: key 'socketMode' must match pattern "^(0o?)?[0-7]{1,3}$"`],
    ['{"log": ', /^config FILE: invalid JSON: /],
  ])('%j -> %s', (content, message) => {
    expect(loadError(content)).toMatch(message);
  });

  it('reports a missing file', () => {
    expect(() => loadConfig(path.join(dir, 'absent.json'))).toThrow(`config ${path.join(dir, 'absent.json')}: No such file or directory`);
  });
});

describe('applyCommandLine', () => {
  const qemuLine = parseCommandLine(['-M', 'none', '-blockdev', 'null-co,node-name=n0', '-qmp', 'unix:/tmp/t.sock,server=on,wait=off']);

  it('with the built-in default, a QEMU launch line gets exactly its own monitors and nodes', () => {
    const config = applyCommandLine(loadConfig(undefined), qemuLine);
    expect(config.monitors.map((m) => m.endpoint.kind === 'listen' && m.endpoint.path)).toEqual(['/tmp/t.sock']);
    expect(config.blockdevs.map((b) => b.value['node-name'])).toEqual(['n0']);
    const onlyMonitor = applyCommandLine(loadConfig(undefined), parseCommandLine(['-qmp', 'unix:/tmp/t.sock,server=on,wait=off']));
    expect(onlyMonitor.blockdevs).toEqual([]);
  });

  it('with the built-in default, nodes alone keep the default monitor; nothing keeps everything', () => {
    const nodesOnly = applyCommandLine(loadConfig(undefined), parseCommandLine(['--blockdev', 'null-co,node-name=n0']));
    expect(nodesOnly.monitors.map((m) => m.endpoint.kind === 'listen' && m.endpoint.path)).toEqual(['/tmp/qblockd.sock']);
    expect(nodesOnly.blockdevs.map((b) => b.value['node-name'])).toEqual(['n0']);
    const bare = applyCommandLine(loadConfig(undefined), parseCommandLine([]));
    expect(bare.blockdevs.map((b) => b.value['node-name'])).toEqual(['disk0']);
  });

  it('appends to a config file by default', () => {
    const base = loadConfig(configFile({ monitors: [{ path: '/run/a.sock' }], drives: ['if=none,id=d0,driver=null-co'] }));
    const config = applyCommandLine(base, qemuLine);
    expect(config.monitors.map((m) => m.endpoint.kind === 'listen' && m.endpoint.path)).toEqual(['/run/a.sock', '/tmp/t.sock']);
    expect(config.blockdevs.map((b) => b.value['node-name'])).toEqual(['disk0', 'n0']);
    expect(config.drives.map((d) => d.options.id)).toEqual(['d0']);
    expect(base.monitors).toHaveLength(1);
  });
});
