import type { FuzzCase } from './cases.ts';
import type { Outcome } from './target.ts';

/**
 * QEMU 7.2 crashes qblockd answers instead (README "Differences from QEMU 7.2",
 * /work/shared/docs/semantics.md). When QEMU dies on a case that matches one of these,
 * the case is not a difference; qblockd must still survive it.
 */
export const KNOWN_QEMU_CRASHES: Array<{ name: string; matches: (requests: Array<Record<string, any>>) => boolean }> = [
  {
    name: 'block-dirty-bitmap-merge with an empty bitmaps list (abort)',
    matches: (requests) => requests.some((request) => mergeArguments(request).some((args) => Array.isArray(args?.bitmaps) && args.bitmaps.length === 0)),
  },
  {
    name: "transaction with completion-mode 'grouped' and a block-dirty-bitmap-enable action (abort)",
    matches: (requests) => requests.some((request) => transactionActions(request).some((action) => action?.type === 'block-dirty-bitmap-enable')
      && request.arguments?.properties?.['completion-mode'] === 'grouped'),
  },
  {
    name: 'transaction whose block-dirty-bitmap-enable action fails its checks (SIGSEGV)',
    matches: (requests) => requests.some((request) => transactionActions(request).some((action) => action?.type === 'block-dirty-bitmap-enable')),
  },
  {
    name: 'blockdev-reopen with an empty options list (abort: bdrv_reopen_multiple asserts a queue)',
    matches: (requests) => requests.some((request) => request.execute === 'blockdev-reopen' && Array.isArray(request.arguments?.options)
      && request.arguments.options.length === 0),
  },
  {
    name: 'blockdev-add null-co / null-aio with a negative size (abort)',
    matches: (requests) => requests.some((request) => request.execute === 'blockdev-add' && ['null-co', 'null-aio'].includes(request.arguments?.driver)
      && typeof request.arguments?.size === 'number' && request.arguments.size < 0),
  },
];

export type Verdict =
  | { kind: 'same' }
  | { kind: 'not-emulated' }
  | { kind: 'known-qemu-crash'; crash: string }
  | { kind: 'difference'; what: string[] };

/** Errors qblockd gives for what it knowingly does not emulate (other drivers, export types, socket types...). */
const NOT_EMULATED = /not supported by qblockd|qblockd cannot/;

/** Compares qblockd's outcome with QEMU's; without QEMU, qblockd must only survive and answer. */
export function judge(fuzzCase: FuzzCase, qblockd: Outcome, qemu: Outcome | null): Verdict {
  const own: string[] = [];
  if (!qblockd.survived) own.push(`qblockd died (${qblockd.exit ?? 'unknown'})`);
  if (qblockd.hung) own.push('qblockd hung');
  if (own.length > 0 || qemu === null) return own.length > 0 ? { kind: 'difference', what: own } : { kind: 'same' };
  if (!qemu.survived || qemu.hung) {
    const crash = KNOWN_QEMU_CRASHES.find((known) => known.matches(parsedRequests(fuzzCase.input)));
    if (crash && !qemu.hung) return { kind: 'known-qemu-crash', crash: crash.name };
  }
  if (qblockd.lines.some((line) => NOT_EMULATED.test(line))) return { kind: 'not-emulated' };
  const what: string[] = [];
  if (!qemu.survived) what.push(`QEMU died (${qemu.exit ?? 'unknown'}), qblockd survived`);
  if (qemu.hung) what.push('QEMU hung, qblockd answered');
  if (qemu.survived && !qemu.hung) {
    if (!sameLines(fuzzCase, qblockd.lines, qemu.lines)) what.push('replies or events differ');
    if (qblockd.state.join('\n') !== qemu.state.join('\n')) what.push('state afterwards differs');
  }
  return what.length > 0 ? { kind: 'difference', what } : { kind: 'same' };
}

/**
 * A blockdev-create that succeeds finishes on QEMU's thread pool, racing its monitor: its
 * waiting, pending and concluded events fall before or after the replies to the requests
 * queued behind it (QEMU 7.2 was seen doing both on the same case). Such a case matches when
 * the replies and the events each come in the same order. A failing create is not relaxed:
 * where it aborts is decided inside the command.
 */
const LATE_SUCCESS_EVENT = /"event": "JOB_STATUS_CHANGE", "data": \{"status": "(waiting|pending|concluded)"/;

function sameLines(fuzzCase: FuzzCase, ours: string[], theirs: string[]): boolean {
  if (ours.join('\n') === theirs.join('\n')) return true;
  const racy = parsedRequests(fuzzCase.input).some((request) => request.execute === 'blockdev-create')
    && ![...ours, ...theirs].some((line) => line.includes('"status": "aborting"'));
  if (!racy) return false;
  const split = (lines: string[]) => [lines.filter((line) => !LATE_SUCCESS_EVENT.test(line)), lines.filter((line) => LATE_SUCCESS_EVENT.test(line))];
  return JSON.stringify(split(ours)) === JSON.stringify(split(theirs));
}

/** The requests a case's bytes contain, as far as they are whole JSON objects starting with `{"execute"`. */
export function parsedRequests(input: Buffer): Array<Record<string, any>> {
  const text = input.toString('utf8');
  const requests: Array<Record<string, any>> = [];
  for (let at = text.indexOf('{"execute"'); at >= 0; at = text.indexOf('{"execute"', at + 1)) {
    for (let end = text.indexOf('}', at); end >= 0; end = text.indexOf('}', end + 1)) {
      try {
        requests.push(JSON.parse(text.slice(at, end + 1)));
        break;
      } catch {
        // Not a whole object yet: try the next closing brace.
      }
    }
  }
  return requests;
}

function transactionActions(request: Record<string, any>): any[] {
  const actions = request.execute === 'transaction' ? request.arguments?.actions : undefined;
  return Array.isArray(actions) ? actions : [];
}

function mergeArguments(request: Record<string, any>): any[] {
  if (request.execute === 'block-dirty-bitmap-merge') return [request.arguments];
  return transactionActions(request).filter((action) => action?.type === 'block-dirty-bitmap-merge').map((action) => action.data);
}
