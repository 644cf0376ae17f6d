import { describe, expect, it } from 'vitest';
import { BITMAP_FLAGS, OPERATION_CHECKS, checkBitmapPermission, type BitmapFlag, type BitmapOperation } from '../../../src/block/bitmap/permissions.ts';

function bitmapWith(flags: BitmapFlag[]) {
  return {
    name: 'b0',
    isBusy: () => flags.includes('busy'),
    readonly: flags.includes('readonly'),
    inconsistent: flags.includes('inconsistent'),
  };
}

const MESSAGES: Record<BitmapFlag, string> = {
  busy: "Bitmap 'b0' is currently in use by another operation and cannot be used",
  readonly: "Bitmap 'b0' is readonly and cannot be modified",
  inconsistent: "Bitmap 'b0' is inconsistent and cannot be used",
};

// The matrix of ../shared/docs/semantics.md ("Permission checks").
const EXPECTED: Record<BitmapOperation, BitmapFlag[]> = {
  clear: ['busy', 'readonly', 'inconsistent'],
  enable: ['busy', 'inconsistent'],
  disable: ['busy', 'inconsistent'],
  remove: ['busy', 'readonly'],
  mergeTarget: ['busy', 'readonly', 'inconsistent'],
  mergeSource: ['busy', 'inconsistent'],
  backupInput: ['busy', 'inconsistent'],
  backup: ['busy', 'readonly', 'inconsistent'],
  export: ['busy', 'inconsistent'],
  // qcow2_truncate_bitmaps_check: every bitmap stored in the image (iotest 086).
  resize: ['busy', 'readonly', 'inconsistent'],
};

describe('bitmap permission table', () => {
  it('matches the documented matrix', () => {
    expect(OPERATION_CHECKS).toEqual(EXPECTED);
  });

  for (const [operation, checked] of Object.entries(EXPECTED) as Array<[BitmapOperation, BitmapFlag[]]>) {
    for (const flag of BITMAP_FLAGS) {
      it(`${operation} with a ${flag} bitmap ${checked.includes(flag) ? 'fails' : 'passes'}`, () => {
        const attempt = () => checkBitmapPermission(bitmapWith([flag]), operation);
        if (checked.includes(flag)) expect(attempt).toThrow(MESSAGES[flag]);
        else expect(attempt).not.toThrow();
      });
    }
  }

  it('reports the first state in the fixed order busy, readonly, inconsistent', () => {
    expect(() => checkBitmapPermission(bitmapWith(['inconsistent', 'readonly', 'busy']), 'clear')).toThrow(MESSAGES.busy);
    expect(() => checkBitmapPermission(bitmapWith(['inconsistent', 'readonly']), 'clear')).toThrow(MESSAGES.readonly);
    expect(() => checkBitmapPermission(bitmapWith(['inconsistent', 'readonly']), 'enable')).toThrow(MESSAGES.inconsistent);
  });
});
