import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ChangeWatch, type WatchedState } from '../../../src/commands/change-watch.ts';

describe('ChangeWatch: change notifications for x-qblockd-watch clients', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  function setup() {
    let shape = 'n0';
    const entries = new Map([['n0/b0', { count: 0, version: 0 }]]);
    // Every set is a change of the bits, as BitmapData's version counts them, whether or not the count moves.
    const counts = { set: (key: string, count: number) => entries.set(key, { count, version: (entries.get(key)?.version ?? 0) + 1 }) };
    const state = (): WatchedState => ({
      shape,
      bitmaps: new Map([...entries].map(([key, { count, version }]) => [key, { node: 'n0', name: key.split('/')[1]!, count, version }])),
    });
    const heard: string[] = [];
    let running = false;
    const watch = new ChangeWatch(state, {
      graphChanged: () => heard.push('graph'),
      bitmapChanged: (node, name, count) => heard.push(`${node}/${name}=${count}`),
    }, 50, () => running);
    return { watch, heard, counts, setShape: (value: string) => (shape = value), setRunning: (value: boolean) => (running = value) };
  }

  it('says nothing while nothing changed, and names the bitmap whose count did', () => {
    const { watch, heard, counts } = setup();
    watch.poke();
    vi.advanceTimersByTime(100);
    expect(heard).toEqual([]);
    counts.set('n0/b0', 65536);
    watch.poke();
    vi.advanceTimersByTime(100);
    expect(heard).toEqual(['n0/b0=65536']);
  });

  it('names a bitmap whose bits changed while its count stayed (a clear, then as many bits written elsewhere)', () => {
    const { watch, heard, counts } = setup();
    counts.set('n0/b0', 65536);
    watch.check();
    counts.set('n0/b0', 0);
    counts.set('n0/b0', 65536);
    watch.check();
    expect(heard).toEqual(['n0/b0=65536', 'n0/b0=65536']);
  });

  it('coalesces a flood of changes into at most one notification per bitmap per interval', () => {
    const { watch, heard, counts } = setup();
    for (let write = 1; write <= 1000; write++) {
      counts.set('n0/b0', write * 65536);
      watch.poke();
      vi.advanceTimersByTime(1); // a write every millisecond for one second
    }
    vi.advanceTimersByTime(100);
    expect(heard.length).toBeLessThanOrEqual(21);
    expect(heard.length).toBeGreaterThanOrEqual(19);
    expect(heard.at(-1)).toBe(`n0/b0=${1000 * 65536}`);
  });

  it('reports a shape change (a node, a flag, an export) as a graph change, and a new bitmap by its count', () => {
    const { watch, heard, counts, setShape } = setup();
    setShape('n0 b1');
    counts.set('n0/b1', 0);
    watch.check();
    expect(heard).toEqual(['graph', 'n0/b1=0']);
  });

  it('keeps looking each interval while something changes unprompted (a job running), and stops after', () => {
    const { watch, heard, setShape, setRunning } = setup();
    setRunning(true);
    watch.poke();
    for (let progress = 1; progress <= 10; progress++) {
      setShape(`n0 job ${progress}`);
      vi.advanceTimersByTime(50);
    }
    expect(heard.filter((what) => what === 'graph').length).toBe(10);
    setRunning(false);
    vi.advanceTimersByTime(50);
    setShape('n0 job done');
    vi.advanceTimersByTime(1000);
    expect(heard.filter((what) => what === 'graph').length).toBe(10); // no longer looking on its own
    watch.poke();
    vi.advanceTimersByTime(50);
    expect(heard.filter((what) => what === 'graph').length).toBe(11);
  });
});
