/** strerror() wording of the errnos block jobs and qemu-io report. */
const STRERROR: Record<number, string> = {
  5: 'Input/output error',
  13: 'Permission denied',
  22: 'Invalid argument',
  27: 'File too large',
  28: 'No space left on device',
  95: 'Operation not supported',
  110: 'Connection timed out',
  123: 'No medium found',
  125: 'Operation canceled',
};

/** The errno of a request to a drive without a medium. */
export const ENOMEDIUM = 123;
/** A request the node's driver has no way to serve. */
export const ENOTSUP = 95;
export const ETIMEDOUT = 110;

export function strerror(errno: number): string {
  return STRERROR[errno] ?? `Unknown error ${errno}`;
}

/** A failed read or write of a node, with the errno QEMU's block layer would return. */
export class BlockIoError extends Error {
  constructor(readonly errno: number) {
    super(strerror(errno));
    this.name = 'BlockIoError';
  }
}
