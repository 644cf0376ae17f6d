/** QMP error classes that QEMU 7.2 still emits (qapi/error.json). */
export type QmpErrorClass =
  | 'GenericError'
  | 'CommandNotFound'
  | 'DeviceNotActive'
  | 'DeviceNotFound'
  | 'KVMMissingCap';

/** An error that becomes `{"error": {"class": ..., "desc": ...}}` on the wire. */
export class QmpError extends Error {
  constructor(
    message: string,
    readonly errorClass: QmpErrorClass = 'GenericError',
  ) {
    super(message);
    this.name = 'QmpError';
  }

  toWire(): { class: QmpErrorClass; desc: string } {
    return { class: this.errorClass, desc: this.message };
  }
}

export const genericError = (message: string): QmpError => new QmpError(message);
