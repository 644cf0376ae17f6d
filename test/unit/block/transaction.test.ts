import { describe, expect, it } from 'vitest';
import { runTransaction, type ActionDefinition } from '../../../src/block/transaction.ts';
import { QmpError } from '../../../src/qmp/errors.ts';
import type { TransactionAction } from '../../../src/schema/generated/qapi-types.ts';

function recorder() {
  const log: string[] = [];
  const action = (name: string, fail = false): ActionDefinition<unknown> => ({
    individualOnly: true,
    prepare() {
      if (fail) throw new QmpError(`${name} failed`);
      log.push(`prepare ${name}`);
      return { commit: () => log.push(`commit ${name}`), abort: () => log.push(`abort ${name}`) };
    },
  });
  const drainAll = () => log.push('drain all');
  return { log, action, drainAll };
}

const bitmap = { node: 'n0', name: 'b0' };
const enable: TransactionAction = { type: 'block-dirty-bitmap-enable', data: bitmap };
const disable: TransactionAction = { type: 'block-dirty-bitmap-disable', data: bitmap };
const clear: TransactionAction = { type: 'block-dirty-bitmap-clear', data: bitmap };
const remove: TransactionAction = { type: 'block-dirty-bitmap-remove', data: bitmap };

describe('transaction runner', () => {
  it('drains every node before it looks at any action, even one it refuses', () => {
    const { log, drainAll } = recorder();
    expect(() => runTransaction([enable], 'individual', {}, drainAll)).toThrow("Transaction action 'block-dirty-bitmap-enable' is not supported by qblockd");
    expect(log).toEqual(['drain all']);
  });

  it('prepares all in order, then commits all in order', () => {
    const { log, action, drainAll } = recorder();
    runTransaction([enable, disable], 'individual', {
      'block-dirty-bitmap-enable': action('a'),
      'block-dirty-bitmap-disable': action('b'),
    }, drainAll);
    expect(log).toEqual(['drain all', 'prepare a', 'prepare b', 'commit a', 'commit b']);
  });

  it('aborts the prepared actions in reverse on the first failure and reports it', () => {
    const { log, action, drainAll } = recorder();
    const definitions = {
      'block-dirty-bitmap-enable': action('a'),
      'block-dirty-bitmap-disable': action('b'),
      'block-dirty-bitmap-clear': action('bad', true),
      'block-dirty-bitmap-remove': action('c'),
    };
    expect(() => runTransaction([enable, disable, clear, remove], 'individual', definitions, drainAll)).toThrow('bad failed');
    expect(log).toEqual(['drain all', 'prepare a', 'prepare b', 'abort b', 'abort a']);
  });

  it('refuses an action kind it has no definition for, after aborting the prepared ones', () => {
    const { log, action, drainAll } = recorder();
    expect(() =>
      runTransaction([enable, { type: 'blockdev-snapshot-internal-sync', data: { device: 'd0', name: 's0' } }], 'individual', { 'block-dirty-bitmap-enable': action('a') }, drainAll),
    ).toThrow("Transaction action 'blockdev-snapshot-internal-sync' is not supported by qblockd");
    expect(log).toEqual(['drain all', 'prepare a', 'abort a']);
  });

  it('refuses grouped completion for individual-only actions with QEMU text', () => {
    const { log, action, drainAll } = recorder();
    expect(() =>
      runTransaction([enable, { type: 'block-dirty-bitmap-add', data: bitmap }], 'grouped', {
        'block-dirty-bitmap-enable': { ...action('a'), individualOnly: false },
        'block-dirty-bitmap-add': action('add'),
      }, drainAll),
    ).toThrow("Action 'block-dirty-bitmap-add' does not support Transaction property completion-mode = grouped");
    expect(log).toEqual(['drain all', 'prepare a', 'abort a']);
  });
});
