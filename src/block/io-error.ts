import { strerror } from '../errno.ts';

/** A failed read or write of a node, with the errno QEMU's block layer would return. */
export class BlockIoError extends Error {
  constructor(readonly errno: number) {
    super(strerror(errno));
    this.name = 'BlockIoError';
  }
}
