import type { BlockStatus } from './drivers/driver.ts';

/** Anything that answers block status: a node, a child's view of it, a driver or an image. */
export interface StatusSource {
  blockStatus(offset: number, length: number): BlockStatus;
}

/** A status run with where it starts. */
export type StatusRun = BlockStatus & { offset: number };

/** The status runs covering [offset, offset+length), ascending. */
export function statusRuns(source: StatusSource, offset: number, length: number): Iterable<StatusRun> {
  return runsOf((at, bytes) => source.blockStatus(at, bytes), offset, length);
}

/** Runs covering [offset, offset+length) of any status answered run by run (`statusAt` gives the run starting at an offset). */
export function* runsOf<Status extends { length: number }>(
  statusAt: (offset: number, length: number) => Status,
  offset: number,
  length: number,
): Iterable<Status & { offset: number }> {
  const end = offset + length;
  for (let at = offset; at < end; ) {
    const status = statusAt(at, end - at);
    yield { ...status, offset: at };
    at += status.length;
  }
}

/** Whether the whole range reads as zeroes, so a copy can write zeroes without reading (backup, copy-before-write). */
export function readsAsZero(source: StatusSource, offset: number, length: number): boolean {
  for (const run of statusRuns(source, offset, length)) {
    if (!run.zero && !run.zeroUnreported) return false;
  }
  return true;
}

/** The allocated parts of [offset, offset+length) as [start, end) runs, ascending and merged: what `sync: top` copies. */
export function* allocatedRuns(source: StatusSource, offset: number, length: number): Iterable<[number, number]> {
  let runStart = -1;
  let runEnd = -1;
  for (const run of statusRuns(source, offset, length)) {
    if (!run.allocated) continue;
    if (run.offset !== runEnd) {
      if (runStart >= 0) yield [runStart, runEnd];
      runStart = run.offset;
    }
    runEnd = run.offset + run.length;
  }
  if (runStart >= 0) yield [runStart, runEnd];
}
