import { strerror } from '../errno.ts';

/** The errno of a request to a drive without a medium. */
export const ENOMEDIUM = 123;
/** A request the node's driver has no way to serve. */
export const ENOTSUP = 95;
export const ETIMEDOUT = 110;

/** A failed read or write of a node, with the errno QEMU's block layer would return. */
export class BlockIoError extends Error {
  constructor(readonly errno: number) {
    super(strerror(errno));
    this.name = 'BlockIoError';
  }
}
