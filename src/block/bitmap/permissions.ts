import { QmpError } from '../../qmp/errors.ts';

/** The three states that forbid using a bitmap, in the order they are checked. */
export const BITMAP_FLAGS = ['busy', 'readonly', 'inconsistent'] as const;
export type BitmapFlag = (typeof BITMAP_FLAGS)[number];

export interface BitmapState {
  readonly name: string;
  isBusy(): boolean;
  readonly readonly: boolean;
  readonly inconsistent: boolean;
}

const MESSAGES: Record<BitmapFlag, (name: string) => string> = {
  busy: (name) => `Bitmap '${name}' is currently in use by another operation and cannot be used`,
  readonly: (name) => `Bitmap '${name}' is readonly and cannot be modified`,
  inconsistent: (name) => `Bitmap '${name}' is inconsistent and cannot be used`,
};

const IS_SET: Record<BitmapFlag, (bitmap: BitmapState) => boolean> = {
  busy: (bitmap) => bitmap.isBusy(),
  readonly: (bitmap) => bitmap.readonly,
  inconsistent: (bitmap) => bitmap.inconsistent,
};

const ALL: readonly BitmapFlag[] = BITMAP_FLAGS;
const ALLOW_READONLY: readonly BitmapFlag[] = ['busy', 'inconsistent'];
const ALLOW_INCONSISTENT: readonly BitmapFlag[] = ['busy', 'readonly'];

/** Which states each operation refuses. Operations not listed (sha256, queries) check nothing. */
export const OPERATION_CHECKS = {
  clear: ALL,
  enable: ALLOW_READONLY,
  disable: ALLOW_READONLY,
  // Removing is the only way out of the inconsistent state.
  remove: ALLOW_INCONSISTENT,
  mergeTarget: ALL,
  mergeSource: ALLOW_READONLY,
  // A backup reads any usable bitmap; it must also be writable unless bitmap-mode is never.
  backupInput: ALLOW_READONLY,
  backup: ALL,
  export: ALLOW_READONLY,
  // qcow2 resizes the bitmaps it stores along with the image, so each must be usable.
  resize: ALL,
} as const satisfies Record<string, readonly BitmapFlag[]>;

export type BitmapOperation = keyof typeof OPERATION_CHECKS;

/** The one permission check: throws QEMU's error for the first forbidden state. */
export function checkBitmapPermission(bitmap: BitmapState, operation: BitmapOperation): void {
  for (const flag of BITMAP_FLAGS) {
    if (OPERATION_CHECKS[operation].includes(flag) && IS_SET[flag](bitmap)) {
      throw new QmpError(MESSAGES[flag](bitmap.name));
    }
  }
}
