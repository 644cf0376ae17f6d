import { describe, expect, it } from 'vitest';
import { runTransaction, type ActionDefinition } from '../../../src/block/transaction.ts';
import { QmpError } from '../../../src/qmp/errors.ts';

function recorder() {
  const log: string[] = [];
  const action = (name: string, fail = false): ActionDefinition => ({
    individualOnly: true,
    prepare() {
      if (fail) throw new QmpError(`${name} failed`);
      log.push(`prepare ${name}`);
      return { commit: () => log.push(`commit ${name}`), abort: () => log.push(`abort ${name}`) };
    },
  });
  return { log, action };
}

describe('transaction runner', () => {
  it('prepares all in order, then commits all in order', () => {
    const { log, action } = recorder();
    runTransaction([{ type: 'a', data: {} }, { type: 'b', data: {} }], 'individual', { a: action('a'), b: action('b') });
    expect(log).toEqual(['prepare a', 'prepare b', 'commit a', 'commit b']);
  });

  it('aborts the prepared actions in reverse on the first failure and reports it', () => {
    const { log, action } = recorder();
    const definitions = { a: action('a'), b: action('b'), bad: action('bad', true), c: action('c') };
    expect(() =>
      runTransaction(
        [{ type: 'a', data: {} }, { type: 'b', data: {} }, { type: 'bad', data: {} }, { type: 'c', data: {} }],
        'individual',
        definitions,
      ),
    ).toThrow('bad failed');
    expect(log).toEqual(['prepare a', 'prepare b', 'abort b', 'abort a']);
  });

  it('refuses grouped completion for individual-only actions with QEMU text', () => {
    const { log, action } = recorder();
    expect(() =>
      runTransaction([{ type: 'a', data: {} }, { type: 'block-dirty-bitmap-add', data: {} }], 'grouped', {
        a: { ...action('a'), individualOnly: false },
        'block-dirty-bitmap-add': action('add'),
      }),
    ).toThrow("Action 'block-dirty-bitmap-add' does not support Transaction property completion-mode = grouped");
    expect(log).toEqual(['prepare a', 'abort a']);
  });
});
