import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MemoryTrim } from '../../src/memory-trim.ts';

const MiB = 1 << 20;

/** A resident set the test sets, and a count of the collections asked for. */
function fakeProcess(resident: number) {
  const state = { resident, collections: 0 };
  const hooks = {
    residentBytes: () => state.resident,
    collectAndShrink: () => {
      state.collections++;
      state.resident -= 10 * MiB;
    },
  };
  return { state, hooks };
}

describe('MemoryTrim', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('collects once the daemon is quiet after growing, and not before it is quiet', () => {
    const { state, hooks } = fakeProcess(48 * MiB);
    const trim = new MemoryTrim(hooks);
    trim.started();
    state.resident = 70 * MiB;
    for (let i = 0; i < 10; i++) {
      trim.noteActivity();
      vi.advanceTimersByTime(1000);
    }
    expect(state.collections).toBe(0);
    vi.advanceTimersByTime(10_000);
    expect(state.collections).toBe(1);
    expect(state.resident).toBe(60 * MiB);
    // Quiet again without new growth: nothing more to do.
    trim.noteActivity();
    vi.advanceTimersByTime(60_000);
    expect(state.collections).toBe(1);
  });

  it('leaves a daemon alone that did not grow much since it started', () => {
    const { state, hooks } = fakeProcess(48 * MiB);
    const trim = new MemoryTrim(hooks);
    trim.started();
    state.resident = 50 * MiB;
    trim.noteActivity();
    vi.advanceTimersByTime(60_000);
    expect(state.collections).toBe(0);
  });

  it('counts growth from the last trim, and stops with the daemon', () => {
    const { state, hooks } = fakeProcess(48 * MiB);
    const trim = new MemoryTrim(hooks);
    trim.started();
    state.resident = 70 * MiB;
    trim.noteActivity();
    vi.advanceTimersByTime(60_000);
    expect(state.collections).toBe(1);
    state.resident = 63 * MiB;
    trim.noteActivity();
    vi.advanceTimersByTime(60_000);
    expect(state.collections).toBe(1);
    state.resident = 80 * MiB;
    trim.noteActivity();
    trim.stop();
    vi.advanceTimersByTime(60_000);
    expect(state.collections).toBe(1);
  });
});
