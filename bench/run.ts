/**
 * npm run bench [-- --quick] [--only qblockd|qemu|qsd] [--rows REGEX] [--suite NAME]
 *
 * Measures qblockd, qemu-system-x86_64 -M none and qemu-storage-daemon side by side in
 * one run, as curves over bitmap count, node count, disk size, dirty density and clients,
 * and prints one table: medians with their spread, the ratio to each QEMU program, and
 * each target with whether it is met. Results go to bench/results/.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BenchDaemon } from './qmp-client.ts';

const REPO = path.resolve(import.meta.dirname, '..');
const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : undefined;
const suiteName = argv.includes('--suite') ? argv[argv.indexOf('--suite') + 1] : undefined;
const rowFilter = argv.includes('--rows') ? new RegExp(argv[argv.indexOf('--rows') + 1]!) : undefined;

type ProgramName = 'qblockd' | 'qemu' | 'qsd';
const PROGRAM_TITLES: Record<ProgramName, string> = { qblockd: 'qblockd', qemu: 'qemu-system-x86_64', qsd: 'qemu-storage-daemon' };
const PROGRAMS: Record<ProgramName, string[]> = {
  qblockd: [path.join(REPO, 'bin/qblockd')],
  qemu: ['qemu-system-x86_64'],
  qsd: ['qemu-storage-daemon'],
};
const programs = (Object.keys(PROGRAMS) as ProgramName[]).filter((name) => !only || only === name);
/** qemu-storage-daemon has no human-monitor-command, so nothing there can dirty a bitmap. */
const CAN_WRITE: Record<ProgramName, boolean> = { qblockd: true, qemu: true, qsd: false };

const KIB = 1024;
const MIB = 1024 * KIB;
const GIB = 1024 * MIB;
const TIB = 1024 * GIB;
const PIB = 1024 * TIB;
const TIB16 = 16 * TIB;
const EXTENTS = 200;
const EXTENT = 16 * MIB;
const BITMAPS = 100;
/** The longest write QEMU's qemu-io accepts on a null-co node. */
const MAX_WRITE = 2 * GIB - 512;

const CURVES = quick
  ? { bitmaps: [1, 100, 1000], nodes: [1, 100], sizes: [GIB, TIB16], densities: [0, 2, 4, 8], clients: [1, 10] }
  : {
      bitmaps: [1, 10, 100, 300, 1000, 3000, 10000],
      nodes: [1, 10, 100, 1000],
      sizes: [GIB, TIB, TIB16, 256 * TIB, PIB],
      /** Eighths of the disk (see density()). */
      densities: [0, 1, 2, 4, 6, 7, 8],
      clients: [1, 10, 100],
    };
/** Repetitions of one measurement: enough for a median and quartiles to mean something. */
const reps = (full: number) => (quick ? Math.max(3, Math.ceil(full / 3)) : full);

/** A measured figure: its median and spread (quartiles from 4 samples on, else min and max). */
interface Stat {
  median: number;
  low: number;
  high: number;
  n: number;
}

interface Row {
  section: string;
  figure: string;
  unit: string;
  /** 'time' and 'bytes': lower is better; 'rate': higher is better. */
  kind: 'time' | 'rate' | 'bytes';
  values: Partial<Record<ProgramName, Stat>>;
  target?: Target;
}

/** A target judges a row; `met` answers undefined when a figure it needs is missing. */
interface Target {
  description: string;
  met: (row: Row) => boolean | undefined;
}

const rows: Row[] = [];
const crossChecks: Array<{ what: string; values: Partial<Record<ProgramName, string>> }> = [];

function stat(samples: number[]): Stat {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  const quartiles = sorted.length >= 4;
  return {
    median: at(0.5),
    low: quartiles ? at(0.25) : sorted[0]!,
    high: quartiles ? at(0.75) : sorted[sorted.length - 1]!,
    n: sorted.length,
  };
}

async function timed(action: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await action();
  return performance.now() - start;
}

function record(section: string, figure: string, unit: string, kind: Row['kind'], program: ProgramName, samples: number[], target?: Target): void {
  if (rowFilter && !rowFilter.test(figure)) return;
  let row = rows.find((candidate) => candidate.figure === figure);
  if (!row) rows.push((row = { section, figure, unit, kind, values: {}, target }));
  row.values[program] = stat(samples);
}

function medianOf(figure: string, program: ProgramName): number | undefined {
  return rows.find((row) => row.figure === figure)?.values[program]?.median;
}

/** How many times better qblockd is than `other` (above 1: better). */
function ratio(row: Row, other: ProgramName): number | undefined {
  const ours = row.values.qblockd?.median;
  const theirs = row.values[other]?.median;
  if (ours === undefined || theirs === undefined || ours === 0) return undefined;
  return row.kind === 'rate' ? ours / theirs : theirs / ours;
}

/** A target on the ratio to qemu-system-x86_64 measured in the same run. */
function atLeast(times: number, other: ProgramName = 'qemu'): Target {
  return {
    description: `>= ${times}x ${other === 'qemu' ? 'QEMU' : PROGRAM_TITLES[other]}`,
    met: (row) => {
      const value = ratio(row, other);
      return value === undefined ? undefined : value >= times;
    },
  };
}

function crossCheck(what: string, program: ProgramName, value: string): void {
  let check = crossChecks.find((candidate) => candidate.what === what);
  if (!check) crossChecks.push((check = { what, values: {} }));
  check.values[program] = value;
}

type Daemons = Map<ProgramName, BenchDaemon>;

/**
 * Runs `body` with one negotiated daemon per program, all at once, so that each
 * measurement can alternate between them and every program sees the same load.
 */
async function withDaemons(active: ProgramName[], args: (program: ProgramName) => string[], body: (daemons: Daemons) => Promise<void>): Promise<void> {
  const daemons: Daemons = new Map();
  try {
    for (const program of active) {
      const daemon = await BenchDaemon.start(PROGRAMS[program], args(program), program === 'qsd');
      daemons.set(program, daemon);
      await daemon.execute('qmp_capabilities');
    }
    await body(daemons);
  } finally {
    for (const daemon of daemons.values()) await daemon.stop();
  }
}

/** `count` timings of `action` on each daemon, alternating between daemons on every repetition. */
async function interleaved(daemons: Daemons, count: number, action: (daemon: BenchDaemon, program: ProgramName, i: number) => Promise<unknown>): Promise<Map<ProgramName, number[]>> {
  return alternating([...daemons.keys()], count, (program, i) => action(daemons.get(program)!, program, i));
}

/** `count` timings of `action` for each participant, alternating between them on every repetition. */
async function alternating<Name>(names: Name[], count: number, action: (name: Name, i: number) => Promise<unknown>): Promise<Map<Name, number[]>> {
  const samples = new Map<Name, number[]>(names.map((name) => [name, []]));
  for (let i = 0; i < count; i++) {
    for (const name of names) samples.get(name)!.push(await timed(() => action(name, i)));
  }
  return samples;
}

/** A few unmeasured runs of each query first: every program is measured warm (for qblockd: JIT-compiled). */
async function warmUp(daemon: BenchDaemon, commands: string[]): Promise<void> {
  for (const command of commands) await daemon.pipeline(Array(10).fill(JSON.stringify({ execute: command })));
}

function recordAll(section: string, figure: string, unit: string, kind: Row['kind'], samples: Map<ProgramName, number[]>, target?: Target): void {
  for (const [program, values] of samples) record(section, figure, unit, kind, program, values, target);
}

/** A null-co node in each program's own spelling (qemu-storage-daemon wants two dashes). */
function nullNode(program: ProgramName, name: string, size: number): string[] {
  return [program === 'qsd' ? '--blockdev' : '-blockdev', `driver=null-co,node-name=${name},size=${size}`];
}

function hmpWrite(node: string, offset: number, length: number, zero = true): string {
  return JSON.stringify({ execute: 'human-monitor-command', arguments: { 'command-line': `qemu-io ${node} "write ${zero ? '-z ' : ''}${offset} ${length}"` } });
}

/** Writes [offset, offset+length) in pieces QEMU accepts, all pipelined. */
async function dirty(daemon: BenchDaemon, node: string, ranges: Array<[number, number]>): Promise<void> {
  const lines: string[] = [];
  for (const [offset, length] of ranges) {
    for (let at = offset; at < offset + length; at += MAX_WRITE) lines.push(hmpWrite(node, at, Math.min(MAX_WRITE, offset + length - at)));
  }
  for (let i = 0; i < lines.length; i += 2000) await daemon.pipeline(lines.slice(i, i + 2000));
}

// ---------------------------------------------------------------------------------------
// Start-up, first command, idle memory

const NODE_START = "bare `node -e ''` start, for scale";
const GREETING = 'startup: spawn to QMP greeting';
type Memory = { rss: number; anon: number; pss: number };

async function startup(active: ProgramName[]): Promise<void> {
  const samples = (): Map<ProgramName, number[]> => new Map(active.map((program) => [program, []]));
  const greetings = samples();
  const firsts = samples();
  const seconds = samples();
  const memory = new Map<ProgramName, Memory[]>(active.map((program) => [program, []]));
  const bareNode: number[] = [];
  for (let i = 0; i < reps(21); i++) {
    // A bare Node start between the spawns measured, so both see the same load.
    const start = performance.now();
    spawnSync(process.execPath, ['-e', '']);
    bareNode.push(performance.now() - start);
    for (const program of active) {
      const daemon = await BenchDaemon.start(PROGRAMS[program], nullNode(program, 'n0', GIB), program === 'qsd');
      greetings.get(program)!.push(daemon.greetingMs);
      await daemon.execute('qmp_capabilities');
      firsts.get(program)!.push(await timed(() => daemon.execute('block-dirty-bitmap-add', { node: 'n0', name: 'first' })));
      seconds.get(program)!.push(await timed(() => daemon.execute('block-dirty-bitmap-add', { node: 'n0', name: 'second' })));
      memory.get(program)!.push(daemon.memory());
      await daemon.stop();
    }
  }
  record('start-up', NODE_START, 'ms', 'time', 'qblockd', bareNode);
  recordAll('start-up', GREETING, 'ms', 'time', greetings, {
    description: "qblockd within 25 ms of `node -e ''` (medians)",
    met: (row) => {
      const ours = row.values.qblockd?.median;
      const node = medianOf(NODE_START, 'qblockd');
      return ours === undefined || node === undefined ? undefined : ours - node <= 25;
    },
  });
  recordAll('start-up', 'startup: first command (bitmap add)', 'ms', 'time', firsts, {
    description: 'qblockd first <= 2x its second',
    met: (row) => {
      const first = row.values.qblockd?.median;
      const second = medianOf('startup: second command (bitmap add)', 'qblockd');
      return first === undefined || second === undefined ? undefined : first <= 2 * second;
    },
  });
  recordAll('start-up', 'startup: second command (bitmap add)', 'ms', 'time', seconds);
  const mib = (pick: (m: Memory) => number) => new Map([...memory].map(([program, values]) => [program, values.map((m) => pick(m) / MIB)]));
  recordAll('idle memory', 'idle memory: resident set (RSS)', 'MiB', 'bytes', mib((m) => m.rss), {
    description: '<= QEMU -M none',
    met: (row) => {
      const value = ratio(row, 'qemu');
      return value === undefined ? undefined : value >= 1;
    },
  });
  recordAll('idle memory', 'idle memory: anonymous (RssAnon)', 'MiB', 'bytes', mib((m) => m.anon), atLeast(1));
  recordAll('idle memory', 'idle memory: proportional share (PSS)', 'MiB', 'bytes', mib((m) => m.pss), atLeast(1));
}

// ---------------------------------------------------------------------------------------
// Protocol: round trips and clients

async function protocol(active: ProgramName[]): Promise<void> {
  await withDaemons(active, () => [], async (daemons) => {
    const batch = 100;
    const serial = await interleaved(daemons, reps(30), async (daemon) => {
      for (let i = 0; i < batch; i++) await daemon.execute('query-version');
    });
    const rates = (timings: Map<ProgramName, number[]>, commands: number) => new Map([...timings].map(([program, values]) => [program, values.map((ms) => (commands / ms) * 1000)]));
    recordAll('protocol', 'round trips, one at a time', 'cmd/s', 'rate', rates(serial, batch), atLeast(1));
    const line = '{"execute": "query-version"}';
    const burst = reps(4000);
    // A short unmeasured burst first, so every program is measured warm (JIT, socket buffers).
    for (const daemon of daemons.values()) await daemon.pipeline(Array(1000).fill(line));
    const pipelined = await interleaved(daemons, reps(9), (daemon) => daemon.pipeline(Array(burst).fill(line)));
    recordAll('protocol', 'commands pipelined on one socket', 'cmd/s', 'rate', rates(pipelined, burst), atLeast(10));
  });
}

/** N clients, each on its own monitor (QEMU serves one client per monitor), all sending round trips at once. */
async function clients(active: ProgramName[]): Promise<void> {
  for (const count of CURVES.clients) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-bench-mon-'));
    const socket = (program: ProgramName, i: number) => path.join(dir, `${program}-${i}.sock`);
    const monitors = (program: ProgramName) =>
      Array.from({ length: count }, (_, i) => [
        program === 'qsd' ? '--chardev' : '-chardev',
        `socket,id=c${i},path=${socket(program, i)},server=on,wait=off`,
        ...(program === 'qsd' ? ['--monitor', `chardev=c${i}`] : ['-mon', `chardev=c${i},mode=control`]),
      ]).flat();
    try {
      await withDaemons(active, monitors, async (daemons) => {
        const connected = new Map<ProgramName, BenchDaemon[]>();
        for (const [program, daemon] of daemons) {
          connected.set(program, await Promise.all(Array.from({ length: count }, (_, i) => daemon.connectAnother(socket(program, i)))));
        }
        const perClient = Math.max(20, Math.ceil(reps(1500) / count));
        const timings = await interleaved(daemons, reps(9), (_daemon, program) =>
          Promise.all(connected.get(program)!.map(async (client) => {
            for (let i = 0; i < perClient; i++) await client.execute('query-version');
          })),
        );
        for (const clientList of connected.values()) for (const client of clientList) client.disconnect();
        const rates = new Map([...timings].map(([program, values]) => [program, values.map((ms) => ((perClient * count) / ms) * 1000)]));
        recordAll('clients', `${count} clients, round trips in parallel (total)`, 'cmd/s', 'rate', rates, atLeast(1));
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}

// ---------------------------------------------------------------------------------------
// 16 TiB node: 200 scattered extents, then the dirty-density curve

function extentOffset(i: number): number {
  return Math.floor((i * (TIB16 / EXTENTS)) / 65536) * 65536;
}

const sha256Of = async (daemon: BenchDaemon, node: string, name: string): Promise<string> =>
  (await daemon.execute('x-debug-block-dirty-bitmap-sha256', { node, name })).sha256;

async function scatteredExtents(active: ProgramName[]): Promise<void> {
  await withDaemons(active.filter((program) => CAN_WRITE[program]), (program) => nullNode(program, 'n0', TIB16), async (daemons) => {
    const baseline = new Map([...daemons].map(([program, daemon]) => [program, daemon.rssBytes()]));
    for (const daemon of daemons.values()) {
      await daemon.execute('block-dirty-bitmap-add', { node: 'n0', name: 'src' });
      await dirty(daemon, 'n0', Array.from({ length: EXTENTS }, (_, i) => [extentOffset(i), EXTENT]));
      await daemon.execute('block-dirty-bitmap-disable', { node: 'n0', name: 'src' });
      await daemon.execute('block-dirty-bitmap-add', { node: 'n0', name: 'dst', disabled: true });
    }
    const adds = await interleaved(daemons, reps(21), async (daemon, _program, i) => {
      await daemon.execute('block-dirty-bitmap-add', { node: 'n0', name: `tmp${i}`, disabled: true });
    });
    for (const daemon of daemons.values()) for (let i = 0; i < reps(21); i++) await daemon.execute('block-dirty-bitmap-remove', { node: 'n0', name: `tmp${i}` });
    recordAll('16 TiB', '16 TiB node: bitmap add', 'ms', 'time', adds);

    const merges = await interleaved(daemons, reps(15), (daemon) => daemon.execute('block-dirty-bitmap-merge', { node: 'n0', target: 'dst', bitmaps: ['src'] }));
    recordAll('16 TiB', '16 TiB node: merge (200 x 16 MiB extents)', 'ms', 'time', merges, atLeast(1));
    const clears = await interleaved(daemons, reps(15), async (daemon) => {
      await daemon.execute('block-dirty-bitmap-clear', { node: 'n0', name: 'dst' });
    });
    recordAll('16 TiB', '16 TiB node: clear (after merging 200 extents once)', 'ms', 'time', clears, atLeast(1));

    const hashes = await interleaved(daemons, reps(9), (daemon) => sha256Of(daemon, 'n0', 'src'));
    recordAll('16 TiB', '16 TiB node: sha256 (200 extents)', 'ms', 'time', hashes, atLeast(0.8));
    for (const [program, daemon] of daemons) crossCheck('sha256 of 200 scattered extents on 16 TiB', program, await sha256Of(daemon, 'n0', 'src'));

    for (const daemon of daemons.values()) await daemon.execute('block-dirty-bitmap-add', { node: 'n0', name: 'rec' });
    const writes = await interleaved(daemons, reps(9), (daemon, _program, i) =>
      daemon.execute('human-monitor-command', { 'command-line': `qemu-io n0 "write ${i * 32}M 16M"` }),
    );
    recordAll('16 TiB', '16 TiB node: 16 MiB guest write', 'ms', 'time', writes, atLeast(1));
    for (const [program, daemon] of daemons) {
      crossCheck('sha256 after 16 MiB writes', program, await sha256Of(daemon, 'n0', 'rec'));
      await daemon.execute('block-dirty-bitmap-remove', { node: 'n0', name: 'rec' });
      await daemon.execute('block-dirty-bitmap-remove', { node: 'n0', name: 'dst' });
      for (let i = 0; i < BITMAPS; i++) {
        await daemon.pipeline([
          JSON.stringify({ execute: 'block-dirty-bitmap-add', arguments: { node: 'n0', name: `b${i}`, disabled: true } }),
          JSON.stringify({ execute: 'block-dirty-bitmap-merge', arguments: { node: 'n0', target: `b${i}`, bitmaps: ['src'] } }),
        ]);
      }
      const nodes = await daemon.execute('query-named-block-nodes');
      const counts = nodes[0]['dirty-bitmaps'].map((b: { count: number }) => b.count).join(',');
      crossCheck('counts of 100 merged bitmaps', program, String(counts.length) + ':' + counts.slice(0, 64));
      record('16 TiB', 'resident memory growth: 100 bitmaps x 200 extents', 'MiB', 'bytes', program, [(daemon.rssBytes() - baseline.get(program)!) / MIB], {
        description: '<= 1/10 of QEMU',
        met: (row) => {
          const value = ratio(row, 'qemu');
          return value === undefined ? undefined : value >= 10;
        },
      });
    }
  });
}

const RAW_SHA256 = 'raw SHA-256 of 32 MiB (what QEMU hashes for 16 TiB), this machine';

/** SHA-256 of the 32 MiB a 16 TiB bitmap at 64 KiB granularity serializes to, in this process: the machine's speed. */
function rawSha256(): number {
  const bytes = Buffer.alloc(TIB16 / 65536 / 8, 0x5a);
  const start = performance.now();
  createHash('sha256').update(bytes).digest('hex');
  return performance.now() - start;
}

/**
 * Dirty density of a 16 TiB node: 512 stripes of 16 GiB, the first k of each stripe's eight
 * 2 GiB chunks dirty (k/8 of the disk), plus one 64 KiB extent just past each dirty prefix,
 * so pages are full, clean, or mixed. QEMU takes about 0.1 s for every 2 GiB qemu-io write,
 * so the chunks are marked in a bitmap of 2 GiB granularity with one 64 KiB write each and
 * merged into the 64 KiB one. Densities grow in order, each adding to the last.
 */
async function density(active: ProgramName[]): Promise<void> {
  const stripe = 16 * GIB;
  const chunk = 2 * GIB;
  const write = (offset: number) => hmpWrite('n0', offset, 64 * KIB);
  const stripes = Array.from({ length: TIB16 / stripe }, (_, i) => i * stripe);
  await withDaemons(active.filter((program) => CAN_WRITE[program]), (program) => nullNode(program, 'n0', TIB16), async (daemons) => {
    for (const daemon of daemons.values()) {
      await daemon.execute('block-dirty-bitmap-add', { node: 'n0', name: 'coarse', granularity: chunk });
      await daemon.execute('block-dirty-bitmap-add', { node: 'n0', name: 'src', disabled: true });
      await daemon.execute('block-dirty-bitmap-add', { node: 'n0', name: 'dst', disabled: true });
    }
    // The raw speed is measured between the programs' hashes, so that it sees the same load.
    const raw: number[] = [];
    let previous = 0;
    for (const eighths of CURVES.densities) {
      const lines: string[] = [];
      for (const start of stripes) for (let k = previous; k < eighths; k++) lines.push(write(start + k * chunk));
      const edges = eighths > 0 && eighths < 8 ? stripes.map((start) => write(start + eighths * chunk)) : [];
      previous = eighths;
      for (const daemon of daemons.values()) {
        for (let i = 0; i < lines.length; i += 2000) await daemon.pipeline(lines.slice(i, i + 2000));
        await daemon.execute('block-dirty-bitmap-merge', { node: 'n0', target: 'src', bitmaps: ['coarse'] });
        await daemon.execute('block-dirty-bitmap-enable', { node: 'n0', name: 'src' });
        if (edges.length > 0) await daemon.pipeline(edges);
        await daemon.execute('block-dirty-bitmap-disable', { node: 'n0', name: 'src' });
      }
      const percent = `${(eighths / 8) * 100}%`;
      for (const [program, daemon] of daemons) crossCheck(`sha256 at ${percent} dirty on 16 TiB`, program, await sha256Of(daemon, 'n0', 'src'));
      const hashes = new Map<ProgramName, number[]>([...daemons.keys()].map((program) => [program, []]));
      // Each program's hash over the raw SHA-256 measured just before it: pairs see the same load.
      const overRaw = new Map<ProgramName, number[]>([...daemons.keys()].map((program) => [program, []]));
      for (let i = 0; i < reps(21); i++) {
        for (const [program, daemon] of daemons) {
          const before = rawSha256();
          raw.push(before);
          const ms = await timed(() => sha256Of(daemon, 'n0', 'src'));
          hashes.get(program)!.push(ms);
          overRaw.get(program)!.push(ms / before);
        }
      }
      record('density', RAW_SHA256, 'ms', 'time', 'qblockd', raw);
      recordAll('density', `16 TiB, ${percent} dirty: sha256`, 'ms', 'time', hashes, atLeast(0.8));
      recordAll('density', `16 TiB, ${percent} dirty: sha256 over the raw SHA-256 just before it`, 'x', 'time', overRaw, {
        description: 'qblockd <= 1.2 (median of pairs)',
        met: (row) => {
          const ours = row.values.qblockd?.median;
          return ours === undefined ? undefined : ours <= 1.2;
        },
      });
      const merges = new Map<ProgramName, number[]>([...daemons.keys()].map((program) => [program, []]));
      const clears = new Map<ProgramName, number[]>([...daemons.keys()].map((program) => [program, []]));
      const transactionClears = new Map<ProgramName, number[]>([...daemons.keys()].map((program) => [program, []]));
      for (let i = 0; i < reps(9); i++) {
        for (const [program, daemon] of daemons) {
          const merge = () => daemon.execute('block-dirty-bitmap-merge', { node: 'n0', target: 'dst', bitmaps: ['src'] });
          merges.get(program)!.push(await timed(merge));
          clears.get(program)!.push(await timed(() => daemon.execute('block-dirty-bitmap-clear', { node: 'n0', name: 'dst' })));
          await merge();
          transactionClears.get(program)!.push(
            await timed(() => daemon.execute('transaction', { actions: [{ type: 'block-dirty-bitmap-clear', data: { node: 'n0', name: 'dst' } }] })),
          );
        }
      }
      recordAll('density', `16 TiB, ${percent} dirty: merge into an empty bitmap`, 'ms', 'time', merges, atLeast(20));
      recordAll('density', `16 TiB, ${percent} dirty: clear`, 'ms', 'time', clears, atLeast(1));
      recordAll('density', `16 TiB, ${percent} dirty: clear in a transaction`, 'ms', 'time', transactionClears, atLeast(1));
    }
  });
}

// ---------------------------------------------------------------------------------------
// Curves: bitmap count, node count, disk size

async function bitmapCount(active: ProgramName[]): Promise<void> {
  const drive = (program: ProgramName) => (program === 'qsd' ? nullNode(program, 'd0', GIB) : ['-drive', `if=none,id=d0,driver=null-co,size=${GIB}`]);
  await withDaemons(active, drive, async (daemons) => {
    let made = 0;
    for (const count of CURVES.bitmaps) {
      const adds: string[] = [];
      for (; made < count; made++) adds.push(JSON.stringify({ execute: 'block-dirty-bitmap-add', arguments: { node: 'd0', name: `bitmap${made}` } }));
      for (const daemon of daemons.values()) {
        for (let i = 0; i < adds.length; i += 2000) await daemon.pipeline(adds.slice(i, i + 2000));
        await warmUp(daemon, ['query-named-block-nodes', 'query-block']);
      }
      const queryReps = reps(count >= 3000 ? 9 : 21);
      recordAll('bitmap count', `${count} bitmaps: query-named-block-nodes`, 'ms', 'time', await interleaved(daemons, queryReps, (daemon) => daemon.execute('query-named-block-nodes')), atLeast(1));
      const withDevices = new Map([...daemons].filter(([program]) => program !== 'qsd'));
      recordAll('bitmap count', `${count} bitmaps: query-block`, 'ms', 'time', await interleaved(withDevices, queryReps, (daemon) => daemon.execute('query-block')), atLeast(1));
      const actions = Array.from({ length: count }, (_, i) => ({ type: 'block-dirty-bitmap-clear', data: { node: 'd0', name: `bitmap${i}` } }));
      const transactionReps = count >= 3000 ? 3 : reps(9);
      recordAll('bitmap count', `${count} bitmaps: one transaction clearing all`, 'ms', 'time', await interleaved(daemons, transactionReps, (daemon) => daemon.execute('transaction', { actions })), atLeast(1));
    }
  });
}

async function nodeCount(active: ProgramName[]): Promise<void> {
  for (const count of CURVES.nodes) {
    const args = (program: ProgramName) => Array.from({ length: count }, (_, i) => nullNode(program, `n${i}`, TIB16)).flat();
    await withDaemons(active, args, async (daemons) => {
      for (const daemon of daemons.values()) await warmUp(daemon, ['query-named-block-nodes']);
      const queries = await interleaved(daemons, reps(count >= 1000 ? 9 : 21), (daemon) => daemon.execute('query-named-block-nodes'));
      recordAll('node count', `${count} nodes: query-named-block-nodes`, 'ms', 'time', queries, atLeast(1));
      const perNode = await interleaved(daemons, reps(30), async (daemon, _program, i) => {
        await daemon.execute('block-dirty-bitmap-add', { node: `n${i % count}`, name: `b${i}` });
        await daemon.execute('block-dirty-bitmap-clear', { node: `n${i % count}`, name: `b${i}` });
      });
      recordAll('node count', `${count} nodes: bitmap add + clear on a node`, 'ms', 'time', perNode, atLeast(1));
    });
  }
}

const SIZE_NAMES = new Map([[GIB, '1 GiB'], [TIB, '1 TiB'], [TIB16, '16 TiB'], [256 * TIB, '256 TiB'], [PIB, '1 PiB']]);

async function diskSize(active: ProgramName[]): Promise<void> {
  for (const size of CURVES.sizes) {
    const name = `disk ${SIZE_NAMES.get(size)!}`;
    await withDaemons(active, (program) => nullNode(program, 'n0', size), async (daemons) => {
      const adds = await interleaved(daemons, reps(9), (daemon, _program, i) => daemon.execute('block-dirty-bitmap-add', { node: 'n0', name: `b${i}` }));
      recordAll('disk size', `${name}: bitmap add`, 'ms', 'time', adds, atLeast(1));
      const removes = await interleaved(daemons, reps(9), (daemon, _program, i) => daemon.execute('block-dirty-bitmap-remove', { node: 'n0', name: `b${i}` }));
      recordAll('disk size', `${name}: bitmap remove`, 'ms', 'time', removes, atLeast(1));
      for (const [program, daemon] of daemons) {
        await daemon.execute('block-dirty-bitmap-add', { node: 'n0', name: 'b' });
        if (CAN_WRITE[program]) await dirty(daemon, 'n0', [[0, 16 * MIB], [size / 2, 16 * MIB]]);
      }
      const hashes = await interleaved(daemons, size >= 256 * TIB ? 3 : reps(9), (daemon) => sha256Of(daemon, 'n0', 'b'));
      recordAll('disk size', `${name}: sha256`, 'ms', 'time', hashes, atLeast(0.8));
      const clears = await interleaved(daemons, reps(9), (daemon) => daemon.execute('block-dirty-bitmap-clear', { node: 'n0', name: 'b' }));
      recordAll('disk size', `${name}: clear`, 'ms', 'time', clears, atLeast(1));
    });
  }
}

// ---------------------------------------------------------------------------------------
// qcow2: open, reopen read-only and back, and close a 1 TiB image carrying 100 bitmaps

let qcow2Template: string | undefined;

function makeQcow2Template(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-bench-img-'));
  const image = path.join(dir, 'template.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', image, '1T']);
  for (let i = 0; i < BITMAPS; i++) execFileSync('qemu-img', ['bitmap', '--add', image, `b${i}`]);
  const commands = Array.from({ length: EXTENTS }, (_, i) => ['-c', `write -z ${Math.floor((i * (TIB / EXTENTS)) / 65536) * 65536} 16M`]).flat();
  execFileSync('qemu-io', ['-f', 'qcow2', ...commands, image]);
  return image;
}

async function qcow2OpenClose(active: ProgramName[]): Promise<void> {
  qcow2Template ??= makeQcow2Template();
  const opens = new Map<ProgramName, number[]>(active.map((program) => [program, []]));
  const closes = new Map<ProgramName, number[]>(active.map((program) => [program, []]));
  const toReadOnly = new Map<ProgramName, number[]>(active.map((program) => [program, []]));
  const toWritable = new Map<ProgramName, number[]>(active.map((program) => [program, []]));
  for (let i = 0; i < reps(5); i++) {
    for (const program of active) {
      const image = path.join(path.dirname(qcow2Template), `${program}-${i}.qcow2`);
      fs.copyFileSync(qcow2Template, image);
      await withDaemons([program], () => [], async (daemons) => {
        const daemon = daemons.get(program)!;
        await daemon.execute('blockdev-add', { driver: 'file', 'node-name': 'f0', filename: image });
        opens.get(program)!.push(await timed(() => daemon.execute('blockdev-add', { driver: 'qcow2', 'node-name': 'q0', file: 'f0' })));
        if (i === 0) crossCheck('sha256 of a qemu-img bitmap on 1 TiB qcow2', program, await sha256Of(daemon, 'q0', 'b7'));
        const reopen = (readOnly: boolean) =>
          daemon.execute('blockdev-reopen', { options: [{ driver: 'qcow2', 'node-name': 'q0', file: 'f0', 'read-only': readOnly }] });
        toReadOnly.get(program)!.push(await timed(() => reopen(true)));
        toWritable.get(program)!.push(await timed(() => reopen(false)));
        if (i === 0) crossCheck('sha256 of that bitmap after reopening read-only and back', program, await sha256Of(daemon, 'q0', 'b7'));
        closes.get(program)!.push(await timed(() => daemon.execute('blockdev-del', { 'node-name': 'q0' })));
      });
      fs.rmSync(image);
    }
  }
  recordAll('qcow2', 'qcow2 1 TiB, 100 bitmaps: open', 'ms', 'time', opens, atLeast(1));
  recordAll('qcow2', 'qcow2 1 TiB, 100 bitmaps: reopen read-only (store)', 'ms', 'time', toReadOnly, atLeast(1));
  recordAll('qcow2', 'qcow2 1 TiB, 100 bitmaps: reopen read-write (in use on disk)', 'ms', 'time', toWritable, atLeast(1));
  recordAll('qcow2', 'qcow2 1 TiB, 100 bitmaps: close (store)', 'ms', 'time', closes, atLeast(1));
}

// ---------------------------------------------------------------------------------------
// Backups

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

/** Longer than qblockd's quiet time before it gives memory back (6 s, src/memory-trim.ts). */
const QUIET_AFTER_BACKUP_MS = 8000;

/**
 * Backups: a full backup of a 1 GiB qcow2 full of data into qcow2, an incremental of a
 * 16 TiB null-co node with 1% dirty in 1,000 extents (with the memory it takes), and the
 * latency of an empty incremental. qemu-storage-daemon is left out: its launch line differs
 * and nothing can dirty its bitmaps.
 */
async function backups(active: ProgramName[]): Promise<void> {
  const programsWithBackup = active.filter((program) => CAN_WRITE[program]);
  backupTemplate ??= makeBackupTemplate();
  const rates = new Map<ProgramName, number[]>(programsWithBackup.map((program) => [program, []]));
  for (let i = 0; i < reps(3); i++) {
    for (const program of programsWithBackup) {
      const target = path.join(path.dirname(backupTemplate), `${program}-${i}.qcow2`);
      execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', target, '1G']);
      warmCache(backupTemplate);
      const images = [
        '-blockdev', `driver=file,node-name=sf,filename=${backupTemplate}`,
        '-blockdev', 'driver=qcow2,node-name=src,file=sf',
        '-blockdev', `driver=file,node-name=tf,filename=${target}`,
        '-blockdev', 'driver=qcow2,node-name=tgt,file=tf',
      ];
      await withDaemons([program], () => images, async (daemons) => {
        const ms = await timedBackup(daemons.get(program)!, { device: 'src', target: 'tgt', sync: 'full', 'job-id': 'full' });
        rates.get(program)!.push(1024 / (ms / 1000));
      });
      const same = spawnSync('qemu-img', ['compare', '-q', '-f', 'qcow2', '-F', 'qcow2', backupTemplate, target]).status === 0;
      if (i === 0) crossCheck('full backup of 1 GiB qcow2 identical to its source (qemu-img compare)', program, String(same));
      fs.rmSync(target);
    }
  }
  recordAll('backup', 'full backup, 1 GiB qcow2 with data -> qcow2', 'MB/s', 'rate', rates, atLeast(1));

  const nodes = (program: ProgramName) => [...nullNode(program, 'src', TIB16), ...nullNode(program, 'tgt', TIB16)];
  await withDaemons(programsWithBackup, nodes, async (daemons) => {
    const extents = 1000;
    const extent = Math.floor(TIB16 / 100 / extents / 65536) * 65536;
    const writes = Array.from({ length: extents }, (_, i) => hmpWrite('src', Math.floor((i * (TIB16 / extents)) / 65536) * 65536, extent));
    const growth = new Map<ProgramName, number>();
    const justAfter = new Map<ProgramName, number>();
    for (const daemon of daemons.values()) await daemon.execute('block-dirty-bitmap-add', { node: 'src', name: 'b' });
    const durations = await interleaved(daemons, reps(3), async (daemon, program, rep) => {
      await daemon.pipeline(writes);
      const before = daemon.rssBytes();
      await timedBackup(daemon, { device: 'src', target: 'tgt', sync: 'incremental', bitmap: 'b', 'job-id': `inc${rep}` });
      justAfter.set(program, daemon.rssBytes());
      growth.set(program, Math.max(growth.get(program) ?? 0, justAfter.get(program)! - before));
    });
    recordAll('backup', 'incremental backup, 16 TiB null-co, 1% dirty in 1000 extents (with its writes)', 'ms', 'time', durations, atLeast(1));
    // A daemon left alone for a while after its backups: qblockd gives memory back once quiet (src/memory-trim.ts).
    await new Promise((resolve) => setTimeout(resolve, QUIET_AFTER_BACKUP_MS));
    for (const [program, daemon] of daemons) {
      record('backup', 'resident memory growth during that backup (largest)', 'MiB', 'bytes', program, [growth.get(program)! / MIB]);
      record('backup', 'resident memory total just after the last of those backups', 'MiB', 'bytes', program, [justAfter.get(program)! / MIB]);
      record('backup', `resident memory total after those backups and ${QUIET_AFTER_BACKUP_MS / 1000} s quiet`, 'MiB', 'bytes', program, [daemon.rssBytes() / MIB], atLeast(1));
      const list: Array<{ 'node-name': string; 'dirty-bitmaps': Array<{ count: number }> }> = await daemon.execute('query-named-block-nodes');
      crossCheck('bitmap count after the incremental backup', program, String(list.find((node) => node['node-name'] === 'src')!['dirty-bitmaps'][0]!.count));
    }
    const latencies = await interleaved(daemons, reps(20), (daemon, _program, i) =>
      timedBackup(daemon, { device: 'src', target: 'tgt', sync: 'incremental', bitmap: 'b', 'job-id': `e${i}` }),
    );
    recordAll('backup', 'empty incremental backup: command to BLOCK_JOB_COMPLETED', 'ms', 'time', latencies, atLeast(1));
  });
}

// ---------------------------------------------------------------------------------------
// NBD serving

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

/**
 * The same read-only images served over NBD by qemu-storage-daemon and by qblockd with the
 * same launch line: nbdcopy throughput, and qemu-img map of a dirty bitmap.
 */
async function nbdServing(active: ProgramName[]): Promise<void> {
  const images = makeNbdImages();
  try {
    await serveNbdImages(active, images);
  } finally {
    // 1.2 GiB of images: never left behind.
    fs.rmSync(path.dirname(images.data), { recursive: true, force: true });
  }
}

async function serveNbdImages(active: ProgramName[], images: { data: string; bitmap: string }): Promise<void> {
  const blockdevs = Object.entries(images).flatMap(([name, image]) => [
    '--blockdev', `driver=file,node-name=${name}-file,filename=${image},read-only=on`,
    '--blockdev', `driver=qcow2,node-name=${name},file=${name}-file,read-only=on`,
  ]);
  const servers = active.filter((program) => program !== 'qemu');
  if (servers.length === 0) return;
  const sockets = new Map<Server, string>();
  await withDaemons(servers, () => blockdevs, async (daemons) => {
    for (const [program, daemon] of daemons) {
      const socket = path.join(path.dirname(daemon.socketPath), 'nbd.sock');
      sockets.set(program, socket);
      await daemon.execute('nbd-server-start', { addr: { type: 'unix', data: { path: socket } } });
      await daemon.execute('block-export-add', { type: 'nbd', id: 'data', 'node-name': 'data' });
      await daemon.execute('block-export-add', { type: 'nbd', id: 'bitmap', 'node-name': 'bitmap', bitmaps: ['b0'] });
    }
    const copy = (server: Server) => execFileSync('nbdcopy', [`nbd+unix:///data?socket=${sockets.get(server)}`, 'null:']);
    const mapBitmap = (server: Server) => {
      const opts = `driver=nbd,server.type=unix,server.path=${sockets.get(server)},export=bitmap,x-dirty-bitmap=qemu:dirty-bitmap:b0`;
      return execFileSync('qemu-img', ['map', '--output=json', '--image-opts', opts], { encoding: 'utf8', maxBuffer: 1 << 28 });
    };
    // One unmeasured run of each first: every program is measured warm (for qblockd, JIT-compiled).
    let map = '';
    for (const program of daemons.keys()) {
      copy(program);
      map = mapBitmap(program);
    }
    const floors = await NbdFloor.start(path.dirname(images.data), images.data, map);
    try {
      for (const floor of floors) {
        sockets.set(floor.server, floor.socket);
        copy(floor.server);
        if (mapBitmap(floor.server) !== map) throw new Error(`bench/nbd-floor.ts (${floor.transport}) mapped the bitmap differently`);
      }
      const participants: Server[] = [...daemons.keys(), ...floors.map((floor) => floor.server)];
      const reads = await alternating(participants, reps(9), async (server) => copy(server));
      const rate = (values: number[]) => values.map((ms) => NBD_DATA_MIB / 1.048576 / (ms / 1000));
      const copyRow = `NBD sequential read, nbdcopy of ${NBD_DATA_MIB} MiB qcow2`;
      for (const program of daemons.keys()) record('nbd', copyRow, 'MB/s', 'rate', program, rate(reads.get(program)!), atLeast(1, 'qsd'));
      const maps = await alternating(participants, reps(9), async (server, i) => {
        const output = mapBitmap(server);
        const program = server as ProgramName;
        if (i === 0 && daemons.has(program)) crossCheck('qemu-img map of the 16 TiB bitmap over NBD (sha256 of the output)', program, createHash('sha256').update(output).digest('hex'));
      });
      const mapRow = 'NBD qemu-img map, 16 TiB bitmap with 10,000 dirty extents';
      for (const program of daemons.keys()) record('nbd', mapRow, 'ms', 'time', program, maps.get(program)!, atLeast(1, 'qsd'));
      // A floor's rows carry qemu-storage-daemon's samples of the same loop, for the ratio.
      for (const { server, title } of floors) {
        const floorRow = (figure: string, unit: string, kind: Row['kind'], samples: Map<Server, number[]>) => {
          record('nbd', `${title}: ${figure}`, unit, kind, 'qblockd', samples.get(server)!);
          if (samples.has('qsd')) record('nbd', `${title}: ${figure}`, unit, kind, 'qsd', samples.get('qsd')!);
        };
        floorRow('nbdcopy of the same data, read from a raw file', 'MB/s', 'rate', new Map([...reads].map(([who, values]) => [who, rate(values)])));
        floorRow('qemu-img map of the same bitmap, answered from memory', 'ms', 'time', maps);
      }
    } finally {
      for (const floor of floors) floor.stop();
    }
  });
}

/** Who serves NBD in the nbd suite: qblockd, qemu-storage-daemon, and Node's floors (bench/nbd-floor.ts). */
type Server = ProgramName | `floor-${FloorTransport}`;
type FloorTransport = 'stream' | 'handle';
const FLOOR_TITLES: Record<FloorTransport, string> = {
  stream: 'Node floor (qblockd column): a bare `net.Server`, no block layer',
  handle: "Node floor below its public API (qblockd column): libuv's pipe handle from Node's internal bindings, no stream layer",
};

/** bench/nbd-floor.ts on one transport, serving `data` (as raw, converted from the qcow2 image) and the map of a bitmap. */
class NbdFloor {
  private constructor(
    private readonly child: ChildProcess,
    readonly transport: FloorTransport,
    readonly socket: string,
  ) {}

  get server(): Server {
    return `floor-${this.transport}`;
  }

  get title(): string {
    return FLOOR_TITLES[this.transport];
  }

  /** One floor per transport, in `dir`. */
  static async start(dir: string, qcow2: string, map: string): Promise<NbdFloor[]> {
    const raw = path.join(dir, 'floor-data.raw');
    const mapFile = path.join(dir, 'floor-map.json');
    execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', qcow2, raw]);
    fs.writeFileSync(mapFile, map);
    const floors: NbdFloor[] = [];
    try {
      for (const transport of Object.keys(FLOOR_TITLES) as FloorTransport[]) {
        const socket = path.join(dir, `floor-${transport}.sock`);
        const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, 'bench/nbd-floor.ts'), socket, raw, mapFile, transport], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
        floors.push(new NbdFloor(child, transport, socket));
        await new Promise<void>((resolve, reject) => {
          child.stdout!.once('data', () => resolve());
          child.once('exit', (code) => reject(new Error(`bench/nbd-floor.ts (${transport}) exited with ${code}`)));
        });
      }
    } catch (error) {
      for (const floor of floors) floor.stop();
      throw error;
    }
    return floors;
  }

  stop(): void {
    this.child.kill();
  }
}

// ---------------------------------------------------------------------------------------
// Backing chain

const CHAIN_MIB = 512;
const CHAIN_STRIPE_MIB = 4;

/**
 * A 4-deep chain made by qemu-img: a raw base full of data under three qcow2 overlays,
 * each holding its own quarter of every 4 MiB stripe, so a sequential read crosses all
 * four layers in every stripe. Returns the directory and the top image.
 */
function makeChain(): { dir: string; top: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-bench-chain-'));
  const base = path.join(dir, 'base.raw');
  execFileSync('qemu-img', ['create', '-q', '-f', 'raw', base, `${CHAIN_MIB}M`]);
  execFileSync('qemu-io', ['-f', 'raw', '-c', `write -P 0x11 0 ${CHAIN_MIB}M`, base], { stdio: 'ignore' });
  let below = base;
  let format = 'raw';
  for (let level = 1; level <= 3; level++) {
    const image = path.join(dir, `l${level}.qcow2`);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', below, '-F', format, image]);
    const writes = Array.from({ length: CHAIN_MIB / CHAIN_STRIPE_MIB }, (_, stripe) => ['-c', `write -P ${0x11 + level * 0x11} ${stripe * CHAIN_STRIPE_MIB + level}M 1M`]).flat();
    execFileSync('qemu-io', ['-f', 'qcow2', ...writes, image], { stdio: 'ignore', maxBuffer: 1 << 26 });
    below = image;
    format = 'qcow2';
  }
  return { dir, top: below };
}

/** Sequential read of the chain's top node over NBD (nbdcopy), opened by each program from the image headers. */
async function backingChain(active: ProgramName[]): Promise<void> {
  const { dir, top } = makeChain();
  try {
    await readChain(active, top);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function readChain(active: ProgramName[], top: string): Promise<void> {
  await withDaemons(active, (program) => {
    const flag = program === 'qsd' ? '--blockdev' : '-blockdev';
    return [flag, `driver=file,node-name=top-file,filename=${top},read-only=on`, flag, 'driver=qcow2,node-name=top,file=top-file,read-only=on'];
  }, async (daemons) => {
    const sockets = new Map<ProgramName, string>();
    for (const [program, daemon] of daemons) {
      const socket = path.join(path.dirname(daemon.socketPath), 'nbd.sock');
      sockets.set(program, socket);
      await daemon.execute('nbd-server-start', { addr: { type: 'unix', data: { path: socket } } });
      await daemon.execute('block-export-add', { type: 'nbd', id: 'top', 'node-name': 'top' });
      const copy = path.join(path.dirname(daemon.socketPath), 'chain.img');
      execFileSync('nbdcopy', [`nbd+unix:///top?socket=${socket}`, copy]);
      crossCheck('nbdcopy of the 4-deep chain (sha256 of the data)', program, createHash('sha256').update(fs.readFileSync(copy)).digest('hex'));
      fs.rmSync(copy);
    }
    const reads = await interleaved(daemons, reps(5), async (_daemon, program) => {
      execFileSync('nbdcopy', [`nbd+unix:///top?socket=${sockets.get(program)}`, 'null:']);
    });
    const rates = new Map([...reads].map(([program, values]) => [program, values.map((ms) => CHAIN_MIB / 1.048576 / (ms / 1000))]));
    recordAll('backing chain', `read through a 4-deep chain (raw + 3 qcow2), nbdcopy of ${CHAIN_MIB} MiB`, 'MB/s', 'rate', rates, atLeast(1));
  });
}

// ---------------------------------------------------------------------------------------
// Report

function format(value: number): string {
  return value >= 100 ? value.toFixed(0) : value >= 1 ? value.toFixed(2) : value.toFixed(3);
}

function cell(value: Stat | undefined): string {
  if (value === undefined) return 'n/a';
  if (value.n === 1) return format(value.median);
  return `${format(value.median)} (${format(value.low)}–${format(value.high)})`;
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

function table(): string[] {
  const lines = [
    '| figure | unit | qblockd | qemu-system-x86_64 | qemu-storage-daemon | x vs QEMU | x vs qsd | target | met |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  let section = '';
  for (const row of rows) {
    if (row.section !== section) {
      section = row.section;
      lines.push(`| **${section}** | | | | | | | | |`);
    }
    const vsQemu = ratio(row, 'qemu');
    const vsQsd = ratio(row, 'qsd');
    const met = row.target?.met(row);
    const metText = row.target === undefined ? '' : met === undefined ? 'n/a' : met ? 'yes' : 'NO';
    lines.push(
      `| ${row.figure} | ${row.unit} | ${cell(row.values.qblockd)} | ${cell(row.values.qemu)} | ${cell(row.values.qsd)} | ` +
        `${vsQemu === undefined ? '' : vsQemu.toFixed(2)} | ${vsQsd === undefined ? '' : vsQsd.toFixed(2)} | ${row.target?.description ?? ''} | ${metText} |`,
    );
  }
  return lines;
}

/** Replaces the text between the bench markers of a README with the latest complete run. */
function publish(file: string, text: string): void {
  const begin = '<!-- bench:begin -->';
  const end = '<!-- bench:end -->';
  const content = fs.readFileSync(file, 'utf8');
  const from = content.indexOf(begin);
  const to = content.indexOf(end);
  if (from < 0 || to < from) return;
  fs.writeFileSync(file, content.slice(0, from + begin.length) + '\n' + text + '\n' + content.slice(to));
}

async function main(): Promise<void> {
  const started = performance.now();
  const suites: Array<[string, (active: ProgramName[]) => Promise<void>]> = [
    ['start-up', startup],
    ['protocol', protocol],
    ['clients', clients],
    ['16 TiB', scatteredExtents],
    ['density', density],
    ['bitmap count', bitmapCount],
    ['node count', nodeCount],
    ['disk size', diskSize],
    ['qcow2', qcow2OpenClose],
    ['backup', backups],
    ['nbd', nbdServing],
    ['backing chain', backingChain],
  ];
  const load = os.loadavg().map((value) => value.toFixed(2)).join(' ');
  const failures: string[] = [];
  for (const [name, suite] of suites) {
    if (suiteName !== undefined && name !== suiteName) continue;
    process.stderr.write(`bench: ${name}... (${((performance.now() - started) / 1000).toFixed(0)} s)\n`);
    try {
      await suite(programs);
    } catch (error) {
      process.stderr.write(`bench: ${name} failed: ${(error as Error).message}\n`);
      failures.push(`${name}: ${(error as Error).message.slice(0, 160)}`);
    }
  }
  const lines = table();
  const facts = machine();
  const minutes = ((performance.now() - started) / 60000).toFixed(1);
  const conditions =
    `Machine: ${Object.entries(facts).map(([k, v]) => `${k} ${v}`).join('; ')}. ` +
    `Load average (1, 5, 15 min) at start ${load}, at end ${os.loadavg().map((value) => value.toFixed(2)).join(' ')}; ` +
    `${minutes} min${quick ? ' (--quick)' : ''}. Cells: median (quartiles, or min–max under 4 samples).`;
  console.log(lines.join('\n'));
  console.log(`\n${conditions}`);
  for (const failure of failures) console.log(`FAILED: ${failure}`);
  let mismatch = false;
  for (const check of crossChecks) {
    const values = Object.values(check.values);
    const same = values.length < 2 || values.every((value) => value === values[0]);
    if (!same) mismatch = true;
    console.log(`cross-check ${same ? 'ok' : 'MISMATCH'}: ${check.what}${same ? '' : ' ' + JSON.stringify(check.values)}`);
  }
  const result = {
    date: new Date().toISOString(),
    quick,
    machine: facts,
    conditions,
    rows: rows.map((row) => ({ ...row, target: row.target?.description, met: row.target?.met(row), vsQemu: ratio(row, 'qemu'), vsQsd: ratio(row, 'qsd') })),
    crossChecks,
    failures,
  };
  const partial = quick || only !== undefined || rowFilter !== undefined || suiteName !== undefined || failures.length > 0;
  const stamp = `${result.date.slice(0, 16).replace(':', '')}-${os.hostname()}${partial ? '-partial' : ''}`;
  fs.mkdirSync(path.join(REPO, 'bench/results'), { recursive: true });
  fs.writeFileSync(path.join(REPO, `bench/results/${stamp}.json`), JSON.stringify(result, null, 2) + '\n');
  // Only a complete run (every program, every row, full repetitions) may stand as the published table.
  if (!partial) {
    const published = lines.join('\n') + `\n\n${conditions}\n`;
    fs.writeFileSync(path.join(REPO, 'bench/results/latest.json'), JSON.stringify(result, null, 2) + '\n');
    fs.writeFileSync(path.join(REPO, 'bench/results/latest.md'), published);
    publish(path.join(REPO, 'bench/README.md'), published);
    publish(path.join(REPO, 'README.md'), published);
  }
  if (mismatch) {
    console.error('bench: the programs disagreed on results: speed figures are not comparable');
    process.exit(1);
  }
}

await main();
