import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeInterop } from '../support/qemu.ts';
import { corpusCase, readCorpus } from './corpus.ts';
import { Target, type ProgramName } from './target.ts';

// Every divergence the fuzzer found, replayed against a fresh process per entry with the
// fuzzer's launch line. The replies were recorded from QEMU 7.2; an entry marked `open`
// is a known divergence in another area (test/fuzz/README.md): it must still differ, so
// that the fix's author removes the mark and the entry becomes a plain regression test.
const corpus = readCorpus();
/** Each entry starts a fresh process: generous on a loaded machine. */
const ENTRY_TIMEOUT_MS = 60_000;

function replay(program: ProgramName) {
  let target: Target;
  beforeAll(async () => {
    target = new Target(program, 10_000);
    await target.start();
  }, ENTRY_TIMEOUT_MS);
  afterAll(async () => target.stop());
  return async (index: number) => {
    const outcome = await target.run(corpusCase(corpus[index]!));
    await target.restart();
    return outcome;
  };
}

describe('fuzz corpus against qblockd', () => {
  const run = replay('qblockd');
  corpus.forEach((entry, index) => {
    const test = entry.open ? it.fails : it;
    test(`${entry.open ? `open (${entry.open}): ` : ''}${entry.found}: ${entry.name}`, async () => {
      const outcome = await run(index);
      expect(outcome.survived && !outcome.hung).toBe(true);
      expect(outcome.lines).toEqual(entry.qemu);
      if (entry.qemuState) expect(outcome.state).toEqual(entry.qemuState);
    }, ENTRY_TIMEOUT_MS);
  });
});

describeInterop('fuzz corpus: the recorded replies are still what QEMU 7.2 answers', { qemuSystem: true }, () => {
  const run = replay('qemu');
  corpus.forEach((entry, index) => {
    it(`${entry.found}: ${entry.name}`, async () => {
      const outcome = await run(index);
      expect(outcome.lines).toEqual(entry.qemu);
      if (entry.qemuState) expect(outcome.state).toEqual(entry.qemuState);
    }, ENTRY_TIMEOUT_MS);
  });
});
