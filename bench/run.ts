/**
 * npm run bench [-- --quick] [--only qblockd|qemu] [--rows REGEX] [--suite NAME]
 *
 * Measures qblockd and QEMU 7.2 side by side in one run and prints one row per
 * figure with the ratio and the target. Results go to bench/results/.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BenchDaemon } from './qmp-client.ts';

const REPO = path.resolve(import.meta.dirname, '..');
const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : undefined;
const rowFilter = argv.includes('--rows') ? new RegExp(argv[argv.indexOf('--rows') + 1]!) : undefined;
const suiteName = argv.includes('--suite') ? argv[argv.indexOf('--suite') + 1] : undefined;

type ProgramName = 'qblockd' | 'qemu';
const PROGRAMS: Record<ProgramName, string[]> = { qblockd: [path.join(REPO, 'bin/qblockd')], qemu: ['qemu-system-x86_64'] };
const programs = (Object.keys(PROGRAMS) as ProgramName[]).filter((name) => !only || only === name);

const TIB16 = 16 * 2 ** 40;
const EXTENTS = 200;
const EXTENT = 16 << 20;
const BITMAPS = 100;

interface Row {
  figure: string;
  unit: string;
  /** 'time': lower is better; 'rate': higher is better. */
  kind: 'time' | 'rate' | 'bytes';
  values: Partial<Record<ProgramName, number | string>>;
  /** `absolute` targets judge qblockd's own figure; the others need QEMU's figure in the same run. */
  target?: { description: string; absolute?: boolean; met: (ratio: number, qblockd: number) => boolean };
}

const rows: Row[] = [];
const crossChecks: Array<{ what: string; values: Partial<Record<ProgramName, string>> }> = [];

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const reps = (full: number) => (quick ? Math.max(1, Math.ceil(full / 4)) : full);

async function timed(action: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await action();
  return performance.now() - start;
}

function record(figure: string, unit: string, kind: Row['kind'], program: ProgramName, value: number | string, target?: Row['target']): void {
  if (rowFilter && !rowFilter.test(figure)) return;
  let row = rows.find((candidate) => candidate.figure === figure);
  if (!row) rows.push((row = { figure, unit, kind, values: {}, target }));
  row.values[program] = value;
}

function extentOffset(i: number): number {
  return Math.floor((i * (TIB16 / EXTENTS)) / 65536) * 65536;
}

async function withDaemon<T>(program: ProgramName, args: string[], body: (daemon: BenchDaemon) => Promise<T>): Promise<T> {
  const daemon = await BenchDaemon.start(PROGRAMS[program], args, false);
  try {
    return await body(daemon);
  } finally {
    await daemon.stop();
  }
}

async function startup(program: ProgramName): Promise<void> {
  const spawns = reps(9);
  const greetings: number[] = [];
  for (let i = 0; i < spawns; i++) {
    const daemon = await BenchDaemon.start(PROGRAMS[program], ['-blockdev', 'driver=null-co,node-name=n0'], false);
    greetings.push(daemon.greetingMs);
    await daemon.stop();
  }
  record('startup to greeting (median)', 'ms', 'time', program, median(greetings), {
    description: 'qblockd <= 150 ms',
    absolute: true,
    met: (_ratio, value) => value <= 150,
  });
  // The same launch line as qemu-storage-daemon's, for which qblockd is also a drop-in.
  const storageDaemon = program === 'qemu' ? ['qemu-storage-daemon'] : PROGRAMS.qblockd;
  const qsd: number[] = [];
  for (let i = 0; i < spawns; i++) {
    const daemon = await BenchDaemon.start(storageDaemon, ['--blockdev', 'driver=null-co,node-name=n0'], true);
    qsd.push(daemon.greetingMs);
    await daemon.stop();
  }
  record('startup to greeting, qemu-storage-daemon syntax (median)', 'ms', 'time', program, median(qsd));
}

async function protocol(program: ProgramName): Promise<void> {
  await withDaemon(program, [], async (daemon) => {
    await daemon.execute('qmp_capabilities');
    const roundTrips = reps(2000);
    const serial = await timed(async () => {
      for (let i = 0; i < roundTrips; i++) await daemon.execute('query-version');
    });
    record('round trips, one at a time', 'cmd/s', 'rate', program, (roundTrips / serial) * 1000, {
      description: '>= 1x QEMU',
      met: (ratio) => ratio >= 1,
    });
    const pipelined = program === 'qemu' ? reps(4000) : reps(20000);
    // A short unmeasured burst first, so both programs are measured warm (JIT, socket buffers).
    await daemon.pipeline('{"execute": "query-version"}', Math.min(2000, pipelined));
    const burst = await timed(() => daemon.pipeline('{"execute": "query-version"}', pipelined));
    record('commands pipelined on one socket', 'cmd/s', 'rate', program, (pipelined / burst) * 1000, {
      description: '>= 10x QEMU',
      met: (ratio) => ratio >= 10,
    });
  });
}

async function addExtents(daemon: BenchDaemon, node: string): Promise<void> {
  for (let i = 0; i < EXTENTS; i++) {
    await daemon.execute('human-monitor-command', { 'command-line': `qemu-io ${node} "write -z ${extentOffset(i)} ${EXTENT}"` });
  }
}

async function bitmapOperations(program: ProgramName): Promise<void> {
  await withDaemon(program, ['-blockdev', `driver=null-co,node-name=n0,size=${TIB16}`], async (daemon) => {
    await daemon.execute('qmp_capabilities');
    const baseline = daemon.rssBytes();
    await daemon.execute('block-dirty-bitmap-add', { node: 'n0', name: 'src' });
    await addExtents(daemon, 'n0');
    await daemon.execute('block-dirty-bitmap-disable', { node: 'n0', name: 'src' });

    const adds: number[] = [];
    for (let i = 0; i < reps(20); i++) {
      adds.push(await timed(() => daemon.execute('block-dirty-bitmap-add', { node: 'n0', name: `tmp${i}`, disabled: true })));
      await daemon.execute('block-dirty-bitmap-remove', { node: 'n0', name: `tmp${i}` });
    }
    record('16 TiB node: bitmap add', 'ms', 'time', program, median(adds));

    await daemon.execute('block-dirty-bitmap-add', { node: 'n0', name: 'dst', disabled: true });
    const merges: number[] = [];
    const clears: number[] = [];
    for (let i = 0; i < reps(10); i++) {
      merges.push(await timed(() => daemon.execute('block-dirty-bitmap-merge', { node: 'n0', target: 'dst', bitmaps: ['src'] })));
      clears.push(await timed(() => daemon.execute('block-dirty-bitmap-clear', { node: 'n0', name: 'dst' })));
    }
    record('16 TiB node: merge (200 x 16 MiB extents)', 'ms', 'time', program, median(merges), { description: '>= 1x QEMU', met: (r) => r >= 1 });
    record('16 TiB node: clear', 'ms', 'time', program, median(clears), { description: '>= 1x QEMU', met: (r) => r >= 1 });

    const hashes: number[] = [];
    let sha = '';
    for (let i = 0; i < reps(5); i++) {
      hashes.push(await timed(async () => (sha = (await daemon.execute('x-debug-block-dirty-bitmap-sha256', { node: 'n0', name: 'src' })).sha256)));
    }
    record('16 TiB node: sha256', 'ms', 'time', program, median(hashes), { description: 'within 20% of QEMU', met: (r) => r >= 1 / 1.2 });
    crossCheck('sha256 of 200 scattered extents on 16 TiB', program, sha);

    await daemon.execute('block-dirty-bitmap-add', { node: 'n0', name: 'rec' });
    const writes: number[] = [];
    for (let i = 0; i < reps(5); i++) {
      writes.push(await timed(() => daemon.execute('human-monitor-command', { 'command-line': `qemu-io n0 "write ${i * 32}M 16M"` })));
    }
    record('16 TiB node: 16 MiB guest write', 'ms', 'time', program, median(writes), { description: '>= 1x QEMU', met: (r) => r >= 1 });
    crossCheck('sha256 after 16 MiB writes', program, (await daemon.execute('x-debug-block-dirty-bitmap-sha256', { node: 'n0', name: 'rec' })).sha256);
    await daemon.execute('block-dirty-bitmap-remove', { node: 'n0', name: 'rec' });
    await daemon.execute('block-dirty-bitmap-remove', { node: 'n0', name: 'dst' });

    for (let i = 0; i < BITMAPS; i++) {
      await daemon.execute('block-dirty-bitmap-add', { node: 'n0', name: `b${i}`, disabled: true });
      await daemon.execute('block-dirty-bitmap-merge', { node: 'n0', target: `b${i}`, bitmaps: ['src'] });
      if (i === 0 || i === 9 || i === 99) {
        const queries: number[] = [];
        await daemon.execute('query-named-block-nodes');
        for (let q = 0; q < reps(20); q++) queries.push(await timed(() => daemon.execute('query-named-block-nodes')));
        record(`query-named-block-nodes, ${i + 2} bitmaps`, 'ms', 'time', program, median(queries));
      }
    }
    const nodes = await daemon.execute('query-named-block-nodes');
    const counts = nodes[0]['dirty-bitmaps'].map((b: any) => b.count).join(',');
    crossCheck('counts of 100 merged bitmaps', program, String(counts.length) + ':' + counts.slice(0, 64));
    record('resident memory growth: 100 bitmaps x 200 extents', 'MiB', 'bytes', program, (daemon.rssBytes() - baseline) / 2 ** 20, {
      description: '<= 1/10 of QEMU',
      met: (r) => r >= 10,
    });
    record('resident memory total after that', 'MiB', 'bytes', program, daemon.rssBytes() / 2 ** 20);
  });
}

async function nodeGrowth(program: ProgramName): Promise<void> {
  for (const count of [1, 10, 100]) {
    const args = Array.from({ length: count }, (_, i) => ['-blockdev', `driver=null-co,node-name=n${i},size=${TIB16}`]).flat();
    await withDaemon(program, args, async (daemon) => {
      await daemon.execute('qmp_capabilities');
      const elapsed = await timed(async () => {
        for (let i = 0; i < count; i++) {
          await daemon.execute('block-dirty-bitmap-add', { node: `n${i}`, name: 'b' });
          await daemon.execute('block-dirty-bitmap-clear', { node: `n${i}`, name: 'b' });
        }
      });
      record(`add + clear on each of ${count} nodes (total)`, 'ms', 'time', program, elapsed);
    });
  }
}

let qcow2Template: string | undefined;

function makeQcow2Template(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-bench-img-'));
  const image = path.join(dir, 'template.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', image, '1T']);
  for (let i = 0; i < BITMAPS; i++) execFileSync('qemu-img', ['bitmap', '--add', image, `b${i}`]);
  const commands = Array.from({ length: EXTENTS }, (_, i) => ['-c', `write -z ${Math.floor((i * (2 ** 40 / EXTENTS)) / 65536) * 65536} 16M`]).flat();
  execFileSync('qemu-io', ['-f', 'qcow2', ...commands, image]);
  return image;
}

async function qcow2OpenClose(program: ProgramName): Promise<void> {
  qcow2Template ??= makeQcow2Template();
  const opens: number[] = [];
  const closes: number[] = [];
  for (let i = 0; i < reps(3); i++) {
    const image = path.join(path.dirname(qcow2Template), `${program}-${i}.qcow2`);
    fs.copyFileSync(qcow2Template, image);
    await withDaemon(program, [], async (daemon) => {
      await daemon.execute('qmp_capabilities');
      await daemon.execute('blockdev-add', { driver: 'file', 'node-name': 'f0', filename: image });
      opens.push(await timed(() => daemon.execute('blockdev-add', { driver: 'qcow2', 'node-name': 'q0', file: 'f0' })));
      if (i === 0) crossCheck('sha256 of a qemu-img bitmap on 1 TiB qcow2', program, (await daemon.execute('x-debug-block-dirty-bitmap-sha256', { node: 'q0', name: 'b7' })).sha256);
      closes.push(await timed(() => daemon.execute('blockdev-del', { 'node-name': 'q0' })));
    });
    fs.rmSync(image);
  }
  record('qcow2 1 TiB, 100 bitmaps: open', 'ms', 'time', program, median(opens), { description: '>= 1x QEMU', met: (r) => r >= 1 });
  record('qcow2 1 TiB, 100 bitmaps: close (store)', 'ms', 'time', program, median(closes), { description: '>= 1x QEMU', met: (r) => r >= 1 });
}

let backupTemplate: string | undefined;

/** A 1 GiB qcow2 image full of data, written by qemu-io. */
function makeBackupTemplate(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-bench-backup-'));
  const image = path.join(dir, 'source.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', image, '1G']);
  const commands = Array.from({ length: 16 }, (_, i) => ['-c', `write -P ${i + 1} ${i * 64}M 64M`]).flat();
  execFileSync('qemu-io', ['-f', 'qcow2', ...commands, image], { stdio: 'ignore' });
  return image;
}

/** Reads a file once so that both programs start from the page cache. */
function warmCache(file: string): void {
  const fd = fs.openSync(file, 'r');
  const buffer = Buffer.alloc(16 << 20);
  try {
    for (let offset = 0; fs.readSync(fd, buffer, 0, buffer.length, offset) > 0; offset += buffer.length);
  } finally {
    fs.closeSync(fd);
  }
}

/** Runs one backup job to BLOCK_JOB_COMPLETED and returns the milliseconds from the command to the event. */
async function timedBackup(daemon: BenchDaemon, args: Record<string, unknown>): Promise<number> {
  daemon.clearEvents();
  const started = performance.now();
  await daemon.execute('blockdev-backup', args);
  const completed = await daemon.waitForEvent('BLOCK_JOB_COMPLETED', (data) => data.device === args['job-id']);
  const elapsed = performance.now() - started;
  if (completed.error) throw new Error(`backup failed: ${String(completed.error)}`);
  return elapsed;
}

async function backups(program: ProgramName): Promise<void> {
  backupTemplate ??= makeBackupTemplate();
  const rates: number[] = [];
  for (let i = 0; i < reps(3); i++) {
    const target = path.join(path.dirname(backupTemplate), `${program}-${i}.qcow2`);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', target, '1G']);
    warmCache(backupTemplate);
    await withDaemon(program, [
      '-blockdev', `driver=file,node-name=sf,filename=${backupTemplate}`,
      '-blockdev', 'driver=qcow2,node-name=src,file=sf',
      '-blockdev', `driver=file,node-name=tf,filename=${target}`,
      '-blockdev', 'driver=qcow2,node-name=tgt,file=tf',
    ], async (daemon) => {
      await daemon.execute('qmp_capabilities');
      const ms = await timedBackup(daemon, { device: 'src', target: 'tgt', sync: 'full', 'job-id': 'full' });
      rates.push(1024 / (ms / 1000));
    });
    const same = spawnSync('qemu-img', ['compare', '-q', '-f', 'qcow2', '-F', 'qcow2', backupTemplate, target]).status === 0;
    if (i === 0) crossCheck('full backup of 1 GiB qcow2 identical to its source (qemu-img compare)', program, String(same));
    fs.rmSync(target);
  }
  record('full backup, 1 GiB qcow2 with data -> qcow2', 'MB/s', 'rate', program, median(rates), { description: '>= 1x QEMU', met: (r) => r >= 1 });

  await withDaemon(program, [
    '-blockdev', `driver=null-co,node-name=src,size=${TIB16}`,
    '-blockdev', `driver=null-co,node-name=tgt,size=${TIB16}`,
  ], async (daemon) => {
    await daemon.execute('qmp_capabilities');
    await daemon.execute('block-dirty-bitmap-add', { node: 'src', name: 'b' });
    const extents = 1000;
    const extent = Math.floor(TIB16 / 100 / extents / 65536) * 65536;
    const durations: number[] = [];
    let growth = 0;
    for (let rep = 0; rep < reps(3); rep++) {
      for (let i = 0; i < extents; i++) {
        const offset = Math.floor((i * (TIB16 / extents)) / 65536) * 65536;
        await daemon.execute('human-monitor-command', { 'command-line': `qemu-io src "write -z ${offset} ${extent}"` });
      }
      const before = daemon.rssBytes();
      durations.push(await timedBackup(daemon, { device: 'src', target: 'tgt', sync: 'incremental', bitmap: 'b', 'job-id': `inc${rep}` }));
      growth = Math.max(growth, daemon.rssBytes() - before);
    }
    record('incremental backup, 16 TiB null-co, 1% dirty in 1000 extents (median)', 'ms', 'time', program, median(durations), {
      description: '>= 1x QEMU',
      met: (r) => r >= 1,
    });
    record('resident memory growth during that backup (largest)', 'MiB', 'bytes', program, growth / 2 ** 20);
    record('resident memory total after that backup', 'MiB', 'bytes', program, daemon.rssBytes() / 2 ** 20, {
      description: '<= QEMU',
      met: (r) => r >= 1,
    });
    const nodes: Array<{ 'node-name': string; 'dirty-bitmaps': Array<{ count: number }> }> = await daemon.execute('query-named-block-nodes');
    crossCheck('bitmap count after the incremental backup', program, String(nodes.find((node) => node['node-name'] === 'src')!['dirty-bitmaps'][0]!.count));

    const latencies: number[] = [];
    for (let i = 0; i < reps(20); i++) {
      latencies.push(await timedBackup(daemon, { device: 'src', target: 'tgt', sync: 'incremental', bitmap: 'b', 'job-id': `e${i}` }));
    }
    record('empty incremental backup: command to BLOCK_JOB_COMPLETED (median)', 'ms', 'time', program, median(latencies), {
      description: '>= 1x QEMU',
      met: (r) => r >= 1,
    });
  });
}

function crossCheck(what: string, program: ProgramName, value: string): void {
  let check = crossChecks.find((candidate) => candidate.what === what);
  if (!check) crossChecks.push((check = { what, values: {} }));
  check.values[program] = value;
}

function nodeStartup(): void {
  const times: number[] = [];
  for (let i = 0; i < reps(9); i++) {
    const start = performance.now();
    spawnSync(process.execPath, ['-e', '']);
    times.push(performance.now() - start);
  }
  record("bare `node -e ''` start, for scale", 'ms', 'time', 'qblockd', median(times));
}

function ratioOf(row: Row): number | undefined {
  const a = row.values.qblockd;
  const b = row.values.qemu;
  if (typeof a !== 'number' || typeof b !== 'number' || a === 0) return undefined;
  return row.kind === 'rate' ? a / b : b / a;
}

function format(value: number | string | undefined): string {
  if (value === undefined) return 'n/a';
  if (typeof value === 'string') return value;
  return value >= 100 ? value.toFixed(0) : value >= 1 ? value.toFixed(2) : value.toFixed(3);
}

function machine(): Record<string, string> {
  const qemuVersion = spawnSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' }).stdout?.split('\n')[0] ?? 'not installed';
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: String(os.cpus().length),
    memory: `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`,
    kernel: os.release(),
    node: process.version,
    qemu: qemuVersion,
  };
}

let nbdImages: { data: string; bitmap: string } | undefined;

const NBD_DATA_MIB = 512;
const NBD_DIRTY_EXTENTS = 10_000;

/** A qcow2 image full of data for throughput, and a 16 TiB one whose persistent bitmap has 10,000 dirty extents. */
function makeNbdImages(): { data: string; bitmap: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-bench-nbd-'));
  const data = path.join(dir, 'data.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', data, `${NBD_DATA_MIB}M`]);
  execFileSync('qemu-io', ['-f', 'qcow2', '-c', `write -P 0x5a 0 ${NBD_DATA_MIB}M`, data], { stdio: 'ignore' });
  const bitmap = path.join(dir, 'bitmap.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', bitmap, '16T']);
  execFileSync('qemu-img', ['bitmap', '--add', bitmap, 'b0']);
  const stride = Math.floor(TIB16 / NBD_DIRTY_EXTENTS / 65536) * 65536;
  const commands = Array.from({ length: NBD_DIRTY_EXTENTS }, (_, i) => ['-c', `write -z ${i * stride} 64k`]).flat();
  execFileSync('qemu-io', ['-f', 'qcow2', ...commands, bitmap], { stdio: 'ignore', maxBuffer: 1 << 28 });
  return { data, bitmap };
}

/** The same read-only images served over NBD by qemu-storage-daemon and by qblockd with the same launch line. */
async function nbdServing(program: ProgramName): Promise<void> {
  nbdImages ??= makeNbdImages();
  const launcher = program === 'qemu' ? ['qemu-storage-daemon'] : PROGRAMS.qblockd;
  const blockdevs = Object.entries(nbdImages).flatMap(([name, image]) => [
    '--blockdev', `driver=file,node-name=${name}-file,filename=${image},read-only=on`,
    '--blockdev', `driver=qcow2,node-name=${name},file=${name}-file,read-only=on`,
  ]);
  const daemon = await BenchDaemon.start(launcher, blockdevs, true);
  try {
    await daemon.execute('qmp_capabilities');
    const socket = path.join(path.dirname(daemon.socketPath), 'nbd.sock');
    await daemon.execute('nbd-server-start', { addr: { type: 'unix', data: { path: socket } } });
    await daemon.execute('block-export-add', { type: 'nbd', id: 'data', 'node-name': 'data' });
    await daemon.execute('block-export-add', { type: 'nbd', id: 'bitmap', 'node-name': 'bitmap', bitmaps: ['b0'] });
    const reads: number[] = [];
    for (let i = 0; i < reps(3); i++) {
      const start = performance.now();
      execFileSync('nbdcopy', [`nbd+unix:///data?socket=${socket}`, 'null:']);
      reads.push(NBD_DATA_MIB / 1.048576 / ((performance.now() - start) / 1000));
    }
    record(`NBD sequential read, nbdcopy of ${NBD_DATA_MIB} MiB qcow2`, 'MB/s', 'rate', program, median(reads), { description: '>= 1x QEMU', met: (r) => r >= 1 });
    const maps: number[] = [];
    const opts = `driver=nbd,server.type=unix,server.path=${socket},export=bitmap,x-dirty-bitmap=qemu:dirty-bitmap:b0`;
    for (let i = 0; i < reps(3); i++) {
      let output = '';
      maps.push(await timed(async () => {
        output = execFileSync('qemu-img', ['map', '--output=json', '--image-opts', opts], { encoding: 'utf8', maxBuffer: 1 << 28 });
      }));
      if (i === 0) crossCheck('qemu-img map of the 16 TiB bitmap over NBD (sha256 of the output)', program, createHash('sha256').update(output).digest('hex'));
    }
    record('NBD qemu-img map, 16 TiB bitmap with 10,000 dirty extents', 'ms', 'time', program, median(maps), { description: '>= 1x QEMU', met: (r) => r >= 1 });
  } finally {
    await daemon.stop();
  }
}

async function main(): Promise<void> {
  const suites: Array<[string, (program: ProgramName) => Promise<void>]> = [
    ['startup', startup],
    ['protocol', protocol],
    ['bitmaps', bitmapOperations],
    ['node growth', nodeGrowth],
    ['qcow2', qcow2OpenClose],
    ['backup', backups],
    ['nbd', nbdServing],
  ];
  nodeStartup();
  for (const [name, suite] of suites) {
    if (suiteName !== undefined && name !== suiteName) continue;
    for (const program of programs) {
      process.stderr.write(`bench: ${name} on ${program}...\n`);
      try {
        await suite(program);
      } catch (error) {
        process.stderr.write(`bench: ${name} on ${program} failed: ${(error as Error).message}\n`);
        record(`${name}: failed`, '', 'time', program, `n/a (${(error as Error).message.slice(0, 60)})`);
      }
    }
  }
  // The NBD images are over a GiB of real data; a run leaves nothing behind.
  if (nbdImages) fs.rmSync(path.dirname(nbdImages.data), { recursive: true, force: true });
  const lines = [
    '| figure | unit | qblockd | QEMU 7.2 | ratio (x better) | target | met |',
    '|---|---|---|---|---|---|---|',
    ...rows.map((row) => {
      const ratio = ratioOf(row);
      let met = '';
      if (row.target && typeof row.values.qblockd === 'number') {
        if (ratio === undefined && !row.target.absolute) met = 'n/a (no QEMU figure)';
        else met = row.target.met(ratio ?? NaN, row.values.qblockd) ? 'yes' : 'NO';
      }
      return `| ${row.figure} | ${row.unit} | ${format(row.values.qblockd)} | ${format(row.values.qemu)} | ${ratio === undefined ? '' : ratio.toFixed(2)} | ${row.target?.description ?? ''} | ${met} |`;
    }),
  ];
  const facts = machine();
  console.log(lines.join('\n'));
  console.log(`\nMachine: ${Object.entries(facts).map(([k, v]) => `${k} ${v}`).join('; ')}${quick ? ' (--quick)' : ''}`);
  let mismatch = false;
  for (const check of crossChecks) {
    const values = Object.values(check.values);
    const same = values.length < 2 || values.every((value) => value === values[0]);
    if (!same) mismatch = true;
    console.log(`cross-check ${same ? 'ok' : 'MISMATCH'}: ${check.what}${same ? '' : ' ' + JSON.stringify(check.values)}`);
  }
  const result = { date: new Date().toISOString(), quick, machine: facts, rows: rows.map((row) => ({ ...row, target: row.target?.description, ratio: ratioOf(row) })), crossChecks };
  const partial = quick || only !== undefined || rowFilter !== undefined || suiteName !== undefined;
  const stamp = `${result.date.slice(0, 10)}-${os.hostname()}${partial ? '-partial' : ''}`;
  fs.mkdirSync(path.join(REPO, 'bench/results'), { recursive: true });
  fs.writeFileSync(path.join(REPO, `bench/results/${stamp}.json`), JSON.stringify(result, null, 2) + '\n');
  // Only a complete run (both programs, every row, full repetitions) may stand as the published table.
  if (!partial) {
    fs.writeFileSync(path.join(REPO, 'bench/results/latest.json'), JSON.stringify(result, null, 2) + '\n');
    fs.writeFileSync(path.join(REPO, 'bench/results/latest.md'), lines.join('\n') + `\n\nMachine: ${Object.entries(facts).map(([k, v]) => `${k} ${v}`).join('; ')}\n`);
  }
  if (mismatch) {
    console.error('bench: the programs disagreed on results: speed figures are not comparable');
    process.exit(1);
  }
}

await main();
