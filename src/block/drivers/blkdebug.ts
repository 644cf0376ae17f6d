import type { BlkdebugEvent, BlkdebugInjectErrorOptions, BlkdebugIOType, BlkdebugSetStateOptions, ImageInfo } from '../../schema/generated/qapi-types.ts';
import { BlockIoError } from '../io-error.ts';
import type { BlockChildIo } from '../node.ts';
import type { BlockDriver, BlockStatus, ZeroWriteFlags } from './driver.ts';
import { EIO } from '../../errno.ts';

const SECTOR = 512;
/** Without `iotype` a rule hits every kind of request but block-status. */
const DEFAULT_IOTYPES: readonly BlkdebugIOType[] = ['read', 'write', 'write-zeroes', 'discard', 'flush'];

interface InjectRule {
  kind: 'inject';
  event: BlkdebugEvent;
  state: number;
  iotypes: readonly BlkdebugIOType[];
  errno: number;
  /** Byte offset the request must cover, or null for any request. */
  offset: number | null;
  once: boolean;
}

interface SetStateRule {
  kind: 'set-state';
  event: BlkdebugEvent;
  state: number;
  newState: number;
}

/**
 * QEMU's fault-injection filter. Rules fire on block-layer events: `none` once
 * at open, `pwritev` / `pwritev_zero` / `pwritev_done` around each write to
 * this node, and what the parent raises on it: `read_aio` / `write_aio` from
 * raw and qcow2 before guest data moves (qcow2 also `read_backing_aio`,
 * `read_compressed`, `write_compressed`). qcow2's metadata and flush events
 * (`l2_update`, `cluster_alloc`, `flush_to_os`...) are never raised: QEMU
 * raises them as its metadata caches write back and depend on each other,
 * and qblockd writes metadata through at once. An inject-error rule that fires
 * becomes active and fails the next matching request with its errno.
 * A state (starting at 1) gates rules; set-state rules move it.
 */
export class BlkdebugDriver implements BlockDriver {
  readonly format = 'blkdebug';
  readonly isFilter = true;
  readonly reportsChildClusterSize = true;
  private readonly rules: Array<InjectRule | SetStateRule>;
  private active: InjectRule[] = [];
  private state = 1;

  constructor(
    private readonly child: BlockChildIo,
    injectErrors: BlkdebugInjectErrorOptions[],
    setStates: BlkdebugSetStateOptions[],
    private readonly filename: () => string,
  ) {
    const injects: InjectRule[] = injectErrors.map((rule) => ({
      kind: 'inject',
      event: rule.event,
      state: Number(rule.state ?? 0),
      iotypes: rule.iotype === undefined ? DEFAULT_IOTYPES : [rule.iotype],
      errno: Number(rule.errno ?? EIO),
      offset: rule.sector === undefined || Number(rule.sector) < 0 ? null : Number(rule.sector) * SECTOR,
      once: rule.once ?? false,
    }));
    const setters: SetStateRule[] = setStates.map((rule) => ({
      kind: 'set-state',
      event: rule.event,
      state: Number(rule.state ?? 0),
      newState: Number(rule.new_state),
    }));
    // QEMU keeps each event's rules newest first.
    this.rules = [...injects, ...setters].reverse();
    this.debugEvent('none');
  }

  size(): number {
    return this.child.size();
  }

  read(offset: number, length: number): Buffer {
    this.check('read', offset, length);
    return this.child.read(offset, length);
  }

  write(offset: number, data: Buffer): void {
    this.debugEvent('pwritev');
    this.check('write', offset, data.length);
    this.child.write(offset, data);
    this.debugEvent('pwritev_done');
  }

  writeZeroes(offset: number, length: number, flags: ZeroWriteFlags = {}): void {
    this.debugEvent('pwritev_zero');
    this.check('write-zeroes', offset, length);
    this.child.writeZeroes(offset, length, flags);
    this.debugEvent('pwritev_done');
  }

  /** Block status passes through (rules for iotype block-status are not emulated). */
  blockStatus(offset: number, length: number): BlockStatus {
    return this.child.blockStatus(offset, length);
  }

  discard(offset: number, length: number): void {
    this.check('discard', offset, length);
    this.child.discard(offset, length);
  }

  flush(): void {
    this.check('flush', 0, 0);
    this.child.flush();
  }

  close(): void {}

  /** As a protocol driver it reports no allocated size. */
  imageInfo(): ImageInfo {
    return { 'virtual-size': this.child.size(), filename: this.filename(), format: this.format };
  }

  /** bdrv_debug_event: rules of the current state fire; an injecting rule replaces the active set. */
  debugEvent(event: BlkdebugEvent): void {
    let newState = this.state;
    let injected = false;
    for (const rule of this.rules) {
      if (rule.event !== event || (rule.state !== 0 && rule.state !== this.state)) continue;
      if (rule.kind === 'set-state') {
        newState = rule.newState;
        continue;
      }
      if (!injected) this.active = [];
      injected = true;
      this.active.unshift(rule);
    }
    this.state = newState;
  }

  private check(iotype: BlkdebugIOType, offset: number, length: number): void {
    const rule = this.active.find(
      (candidate) =>
        candidate.iotypes.includes(iotype) &&
        (candidate.offset === null || (length > 0 && candidate.offset >= offset && candidate.offset < offset + length)),
    );
    if (!rule) return;
    if (rule.once) {
      this.active.splice(this.active.indexOf(rule), 1);
      this.rules.splice(this.rules.indexOf(rule), 1);
    }
    throw new BlockIoError(rule.errno);
  }
}
