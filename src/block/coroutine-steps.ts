/**
 * Work written the way QEMU runs it in a coroutine: each `yield` stands where
 * QEMU's coroutine yields (I/O handed to its thread pool, a drain). What comes
 * before the first yield runs inside whoever entered the coroutine: for a job,
 * inside the command that started it.
 */
export type CoroutineSteps<T = void> = Generator<void, T, undefined>;

/** Runs the steps to their end at once, for the callers QEMU runs outside a coroutine. */
export function runToEnd<T>(steps: CoroutineSteps<T>): T {
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/**
 * Enters the steps as QEMU enters a coroutine: synchronously up to the first
 * yield, then one event-loop turn per yield (a thread-pool round trip).
 * Returns `{ value }` when they ended without yielding, else a promise of the
 * value. A throw before the first yield is thrown here.
 */
export function enterSteps<T>(steps: CoroutineSteps<T>): { value: T } | Promise<T> {
  const first = steps.next();
  if (first.done) return { value: first.value };
  return (async () => {
    for (;;) {
      await new Promise((resolve) => setImmediate(resolve));
      const step = steps.next();
      if (step.done) return step.value;
    }
  })();
}
