import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DaemonProcess, type RawClient } from '../support/daemon.ts';
import { describeInterop, qemuImg } from '../support/qemu.ts';

/**
 * Real NBD clients (qemu-img, qemu-io, qemu-nbd, nbdinfo, nbdcopy) against
 * qblockd and against QEMU 7.2 serving copies of the same image: every
 * client must print the same thing for both.
 */

const PROGRAMS = { qemu: 'qemu-system-x86_64', qblockd: undefined } as const;
type Program = keyof typeof PROGRAMS;

interface Served {
  daemon: DaemonProcess;
  qmp: RawClient;
  socket: string;
  image: string;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-nbd-clients-'));
const source = path.join(dir, 'source.qcow2');
const served: Partial<Record<Program, Served>> = {};

function run(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 60_000 });
  return `${result.stdout}${result.stderr}exit ${result.status}`;
}

/** qemu-io's timing lines differ from run to run. */
function withoutTimings(output: string): string {
  return output.replace(/^.* ops; .*$/gm, '');
}

/**
 * Runs the same client against both servers (SOCKET and PROGRAM in the
 * arguments name each one's socket and files) and returns QEMU's output after
 * checking qblockd's equals it.
 */
function both(command: string, args: string[], filter: (output: string) => string = (output) => output): string {
  const outputs = (['qemu', 'qblockd'] as const).map((program) => {
    const socket = served[program]!.socket;
    const output = run(command, args.map((arg) => arg.replaceAll('SOCKET', socket).replaceAll('PROGRAM', program)));
    return filter(output.replaceAll(socket, 'SOCKET').replaceAll(path.join(dir, program), path.join(dir, 'PROGRAM')));
  });
  expect(outputs[1]).toBe(outputs[0]);
  return outputs[0]!;
}

const uri = (exportName: string) => `nbd+unix:///${exportName}?socket=SOCKET`;
const imageOpts = (exportName: string, bitmap?: string) =>
  `driver=nbd,server.type=unix,server.path=SOCKET,export=${exportName}${bitmap ? `,x-dirty-bitmap=qemu:dirty-bitmap:${bitmap}` : ''}`;

async function serve(program: Program): Promise<Served> {
  const image = path.join(dir, `${program}.qcow2`);
  fs.copyFileSync(source, image);
  const daemon = await DaemonProcess.start(
    ['-blockdev', `driver=file,node-name=f0,filename=${image}`, '-blockdev', 'driver=qcow2,node-name=n0,file=f0'],
    { program: PROGRAMS[program] },
  );
  const qmp = await daemon.client();
  const socket = path.join(daemon.dir, 'nbd.sock');
  const commands: Array<[string, Record<string, unknown>]> = [
    // Guest writes the bitmap b0 records; b1 is disabled and stays clean.
    ['human-monitor-command', { 'command-line': 'qemu-io n0 "write -P 0x11 20M 128k"' }],
    ['human-monitor-command', { 'command-line': 'qemu-io n0 "write -P 0x22 1000k 100k"' }],
    ['nbd-server-start', { addr: { type: 'unix', data: { path: socket } } }],
    ['block-export-add', { type: 'nbd', id: 'e0', 'node-name': 'n0', name: 'disk', writable: true, bitmaps: ['b0', 'b1'], 'allocation-depth': true, description: 'the disk' }],
  ];
  for (const [execute, args] of commands) {
    const reply = await qmp.command({ execute, arguments: args });
    expect(reply.return).toBeDefined();
  }
  return { daemon, qmp, socket, image };
}

describeInterop('real NBD clients against qblockd and QEMU 7.2', { qemuImg: true, qemuSystem: true, nbdTools: true }, () => {
  beforeAll(async () => {
    qemuImg('create', '-q', '-f', 'qcow2', source, '64M');
    run('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0xaa 0 1M', '-c', 'write -z 4M 1M', '-c', 'write -P 0x55 10M 64k', '-c', 'write -c -P 0x66 12M 64k', source]);
    qemuImg('bitmap', '--add', source, 'b0');
    qemuImg('bitmap', '--add', '--disable', source, 'b1');
    for (const program of ['qemu', 'qblockd'] as const) served[program] = await serve(program);
  }, 60_000);

  afterAll(async () => {
    for (const session of Object.values(served)) await session?.daemon.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('qemu-img map gives the same extents, with and without x-dirty-bitmap', () => {
    const dirty = both('qemu-img', ['map', '--output=json', '--image-opts', imageOpts('disk', 'b0')]);
    expect(dirty).toContain('"start": 20971520, "length": 131072, "depth": 0, "present": false');
    both('qemu-img', ['map', '--output=json', '--image-opts', imageOpts('disk', 'b1')]);
    const data = both('qemu-img', ['map', '--output=json', '--image-opts', imageOpts('disk')]);
    expect(data).toContain('"zero": true');
  });

  it('qemu-nbd --list and nbdinfo --list describe the export alike', () => {
    expect(both('qemu-nbd', ['--list', '-k', 'SOCKET'])).toContain('qemu:dirty-bitmap:b1');
    expect(both('nbdinfo', ['--list', uri('')])).toContain('description: the disk');
    both('nbdinfo', ['--json', uri('disk')]);
  });

  it('nbdinfo --map reads base:allocation, allocation depth and each bitmap alike', () => {
    expect(both('nbdinfo', ['--map=qemu:dirty-bitmap:b0', uri('disk')])).toContain('dirty');
    both('nbdinfo', ['--map=qemu:dirty-bitmap:b1', uri('disk')]);
    both('nbdinfo', ['--map', uri('disk')]);
    both('nbdinfo', ['--map=qemu:allocation-depth', uri('disk')]);
    both('nbdinfo', ['--map', '--totals', uri('disk')]);
  });

  it('qemu-io -r reads the patterns written', () => {
    const output = both(
      'qemu-io',
      ['-r', '-f', 'raw', '-c', 'read -P 0xaa 0 1000k', '-c', 'read -P 0x22 1000k 100k', '-c', 'read -P 0 4M 1M', '-c', 'read -P 0x66 12M 64k', '-c', 'read -P 0x11 20M 128k', '-c', 'read -P 0 63M 1M', uri('disk')],
      withoutTimings,
    );
    expect(output).not.toContain('Pattern verification failed');
    expect(output).toContain('exit 0');
  });

  it('qemu-img compare and convert over NBD see the image the server holds', () => {
    for (const program of ['qemu', 'qblockd'] as const) {
      run('qemu-io', ['-c', 'flush', '-f', 'raw', uri('disk').replace('SOCKET', served[program]!.socket)]);
    }
    const converted = path.join(dir, 'PROGRAM-converted.qcow2');
    both('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', uri('disk'), converted]);
    for (const program of ['qemu', 'qblockd'] as const) {
      expect(run('qemu-img', ['compare', '-U', '-f', 'qcow2', '-F', 'raw', converted.replace('PROGRAM', program), uri('disk').replace('SOCKET', served[program]!.socket)])).toBe('Images are identical.\nexit 0');
    }
    expect(both('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', uri('disk'), source])).toContain('Content mismatch at offset 1024000');
  });

  it('nbdcopy copies the export', () => {
    const copy = path.join(dir, 'PROGRAM-copy.raw');
    both('nbdcopy', [uri('disk'), copy]);
    const [fromQemu, fromQblockd] = (['qemu', 'qblockd'] as const).map((program) => fs.readFileSync(copy.replace('PROGRAM', program)));
    expect(fromQblockd!.equals(fromQemu!)).toBe(true);
    expect(fromQblockd!.subarray(0, 4).toString('hex')).toBe('aaaaaaaa');
  });

  it('writes through the export are read back and marked in the bitmap', () => {
    both('qemu-io', ['-f', 'raw', '-c', 'write -P 0x77 40M 64k', '-c', 'write -z 41M 64k', '-c', 'discard 42M 64k', uri('disk')], withoutTimings);
    const map = both('nbdinfo', ['--map=qemu:dirty-bitmap:b0', uri('disk')]);
    expect(map).toMatch(/41943040\s+65536\s+1\s+dirty/);
    expect(map).toMatch(/42991616\s+65536\s+1\s+dirty/);
    both('qemu-io', ['-r', '-f', 'raw', '-c', 'read -P 0x77 40M 64k', '-c', 'read -P 0 41M 64k', uri('disk')], withoutTimings);
    both('nbdinfo', ['--map', uri('disk')]);
  });
});
