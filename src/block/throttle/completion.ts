import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The data path is synchronous: a request through a throttle node is done at
 * once, and the throttle node records when QEMU would have let it finish. An
 * asynchronous caller (HMP qemu-io, ...) runs its requests inside
 * `settleWhenDue`, which waits until the latest such time before it answers.
 */
let open: { dueAt: number } | null = null;

/** The clock throttling counts in: milliseconds, monotonic. */
export const now = (): number => performance.now();

/** A request in the running scope finishes at `at` (QEMU would still be waiting until then). */
export function finishesAt(at: number): void {
  if (open) open.dueAt = Math.max(open.dueAt, at);
}

/** Runs `run` in a scope of its own and says when its requests are due; nothing is passed to the enclosing scope. */
export function measureDue<T>(run: () => T): { dueAt: number; outcome: { value: T } | { error: unknown } } {
  const enclosing = open;
  const scope = { dueAt: now() };
  open = scope;
  let outcome: { value: T } | { error: unknown };
  try {
    outcome = { value: run() };
  } catch (error) {
    outcome = { error };
  } finally {
    open = enclosing;
  }
  return { dueAt: scope.dueAt, outcome };
}

/** Runs `run`, then waits until its throttled requests are due before returning its value or throwing its error. */
export async function settleWhenDue<T>(run: () => T): Promise<T> {
  const { dueAt, outcome } = measureDue(run);
  const wait = dueAt - now();
  if (wait > 0) await sleep(wait);
  if ('error' in outcome) throw outcome.error;
  return outcome.value;
}

/**
 * `settleWhenDue` for a reply on a hot path (NBD): `run`'s outcome (what it threw, or
 * null) is answered at once, without a promise, when none of its requests is still due.
 */
export function answerWhenDue(run: () => void, answer: (failure: unknown) => Promise<void> | undefined): Promise<void> | undefined {
  const { dueAt, outcome } = measureDue(run);
  const failure = 'error' in outcome ? outcome.error : null;
  const wait = dueAt - now();
  return wait > 0 ? sleep(wait).then(() => answer(failure)) : answer(failure);
}
