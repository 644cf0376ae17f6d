import { describe, expect, it } from 'vitest';
import { BitmapData } from '../../../src/block/bitmap/bitmap-data.ts';
import { DirtyBitmap } from '../../../src/block/bitmap/dirty-bitmap.ts';
import { FrozenBitmap, SUCCESSOR_OUTCOMES } from '../../../src/block/bitmap/successor.ts';
import { NullDriver } from '../../../src/block/drivers/null-co.ts';
import { Job, JOB_TRANSITIONS, JOB_VERB_STATES, type JobDriver } from '../../../src/block/jobs/job.ts';
import { BlockNode } from '../../../src/block/node.ts';

// QEMU 7.2 job.c, JobSTT and JobVerbTable, columns U C R P Y S W D X E N.
const STT = {
  undefined: '01000000000', created: '00100000101', running: '00011010100', paused: '00100000000',
  ready: '00000110100', standby: '00001000000', waiting: '00000001100', pending: '00000000110',
  aborting: '00000000110', concluded: '00000000001', null: '00000000000',
};
const VERBS = {
  cancel: '01111111000', pause: '01111100000', resume: '01111100000', 'set-speed': '01111100000',
  complete: '00001100000', finalize: '00000001000', dismiss: '00000000010', change: '01111100000',
};
const ORDER = ['undefined', 'created', 'running', 'paused', 'ready', 'standby', 'waiting', 'pending', 'aborting', 'concluded', 'null'];
const row = (states: readonly string[]) => ORDER.map((state) => (states.includes(state) ? '1' : '0')).join('');

describe('job tables', () => {
  it('transition table equals QEMU JobSTT', () => {
    for (const [from, bits] of Object.entries(STT)) expect(row(JOB_TRANSITIONS[from as keyof typeof STT]), from).toBe(bits);
  });
  it('verb table equals QEMU JobVerbTable', () => {
    for (const [verb, bits] of Object.entries(VERBS)) expect(row(JOB_VERB_STATES[verb as keyof typeof VERBS]), verb).toBe(bits);
  });
});

function recordingJob(run: (job: Job) => number | Promise<number>, options = { autoFinalize: true, autoDismiss: true }) {
  const events: string[] = [];
  const driver: JobDriver = { type: 'backup', run };
  let removed!: () => void;
  const gone = new Promise<void>((resolve) => (removed = resolve));
  const job = new Job('j', driver, options, {
    emit: (name, data) => events.push(name === 'JOB_STATUS_CHANGE' ? String(data.status) : name),
    removed: () => {
      events.push('removed');
      removed();
    },
  });
  return { job, events, gone };
}

describe('job state machine', () => {
  it('completes within start() a run that ended before its first yield, as job_exit runs before the reply', () => {
    const failed = recordingJob(() => -22, { autoFinalize: true, autoDismiss: false });
    failed.job.start();
    expect(failed.events).toEqual(['created', 'running', 'aborting', 'BLOCK_JOB_COMPLETED', 'concluded']);
    expect(failed.job.error).toBe('Invalid argument');
    const succeeded = recordingJob(() => 0, { autoFinalize: true, autoDismiss: false });
    succeeded.job.start();
    expect(succeeded.events).toEqual(['created', 'running', 'waiting', 'pending', 'BLOCK_JOB_COMPLETED', 'concluded']);
  });

  it('completes a run that yielded on a later turn, after start() returned', async () => {
    const { job, events } = recordingJob(async () => -22, { autoFinalize: true, autoDismiss: false });
    job.start();
    expect(events).toEqual(['created', 'running']);
    // The run's promise settles within this turn; job_exit follows on the next one.
    const nextTurn = () => new Promise((resolve) => setImmediate(resolve));
    await nextTurn();
    expect(events).toEqual(['created', 'running']);
    await nextTurn();
    expect(events).toEqual(['created', 'running', 'aborting', 'BLOCK_JOB_COMPLETED', 'concluded']);
  });

  it('runs created -> running -> paused -> running around a drained start, then completes in QEMU order', async () => {
    const { job, events, gone } = recordingJob(async (j) => (await j.sleep(0), 0));
    job.pause();
    job.start();
    job.resume();
    await gone;
    expect(events).toEqual(['created', 'running', 'paused', 'running', 'waiting', 'pending', 'BLOCK_JOB_COMPLETED', 'concluded', 'null', 'removed']);
  });

  it('refuses verbs with QEMU texts and cancels a never-started job without a CANCELLED event', () => {
    const { job, events } = recordingJob(async () => 0);
    expect(() => job.userFinalize()).toThrow("Job 'j' in state 'created' cannot accept command verb 'finalize'");
    expect(() => job.userResume()).toThrow("Can't resume a job that was not paused");
    job.cancel(true);
    expect(events).toEqual(['created', 'aborting', 'concluded', 'null', 'removed']);
  });

  it('a drain of a sleeping job emits one paused/running pair per drained section', async () => {
    const { job, events, gone } = recordingJob(async (j) => {
      while (!j.isCancelled()) await j.sleep(null);
      return 0;
    });
    job.start();
    await new Promise((resolve) => setImmediate(resolve));
    job.drain();
    job.drain();
    expect(events.slice(2)).toEqual(['paused', 'running', 'paused', 'running']);
    job.userCancel(true);
    await gone;
    expect(events.slice(6)).toEqual(['aborting', 'BLOCK_JOB_CANCELLED', 'concluded', 'null', 'removed']);
  });
});

describe('successor rules', () => {
  const size = 16 * 65536;
  function frozenSetup() {
    const node = new BlockNode('n', new NullDriver('null-co', { size }, 'null-co://'), [], false, true);
    const bitmap = new DirtyBitmap('b', new BitmapData({ diskSize: size, granularity: 65536 }), { enabled: true, persistent: false });
    node.addBitmap(bitmap);
    bitmap.data.markRange(0, 2 * 65536); // clusters 0 and 1 were dirty before the job
    const frozen = new FrozenBitmap(node, bitmap);
    node.write(8 * 65536, Buffer.alloc(512)); // a write during the job lands in the successor
    const uncopied = new BitmapData({ diskSize: size, granularity: 65536 });
    uncopied.markRange(65536, 65536); // the job copied cluster 0 only
    return { node, bitmap, frozen, uncopied };
  }
  const dirty = (data: BitmapData) => [...data.dirtyRuns()];

  it('freezes: busy, not marking, still reported recording through its successor', () => {
    const { node, bitmap } = frozenSetup();
    expect(bitmap.isBusy()).toBe(true);
    expect(bitmap.info().recording).toBe(true);
    expect(dirty(bitmap.data)).toEqual([[0, 2]]);
    expect(node.bitmaps).toHaveLength(2);
  });

  it.each([
    ['on-success', 'success', [[8, 9]]],
    ['on-success', 'failure', [[0, 2], [8, 9]]],
    ['never', 'success', [[0, 2], [8, 9]]],
    ['always', 'success', [[8, 9]]],
    ['always', 'failure', [[1, 2], [8, 9]]],
  ] as const)('%s after %s', (mode, outcome, expected) => {
    const { node, bitmap, frozen, uncopied } = frozenSetup();
    frozen.resolve(mode, outcome, uncopied);
    expect(dirty(bitmap.data)).toEqual(expected);
    expect(bitmap.isBusy()).toBe(false);
    expect(bitmap.enabled).toBe(true);
    expect(node.bitmaps).toEqual([bitmap]);
    expect(SUCCESSOR_OUTCOMES[mode][outcome]).toBeDefined();
  });
});
