import { QmpError } from '../qmp/errors.ts';
import { parseInteger, parseSize } from '../schema/number-text.ts';

export type PropertyValue = string | number | boolean;

/** How QEMU's qdev property of one type reads a -device value, with its refusals. */
type PropertyReader = (name: string, text: string) => PropertyValue;

function integerReader(min: number, max: number, label: string): PropertyReader {
  return (name, text) => {
    const parsed = parseInteger(text);
    if (parsed === null) throw new QmpError(`Parameter '${name}' expects integer`);
    const value = Number(parsed);
    if (value < min || value > max) throw new QmpError(`Parameter '${name}' expects ${label}`);
    return value;
  };
}

const readString: PropertyReader = (_name, text) => text;
const readBool: PropertyReader = (name, text) => {
  if (['on', 'yes', 'true', 'y'].includes(text)) return true;
  if (['off', 'no', 'false', 'n'].includes(text)) return false;
  throw new QmpError(`Parameter '${name}' expects 'on' or 'off'`);
};
const readOnOffAuto: PropertyReader = (name, text) => {
  if (!['on', 'off', 'auto'].includes(text)) throw new QmpError(`Parameter '${name}' does not accept value '${text}'`);
  return text;
};

/** A size32 property ("4k" allowed); block sizes are also powers of two in 512..2 MiB. */
function sizeReader(blockSize: boolean): PropertyReader {
  return (name, text) => {
    const size = parseSize(text);
    if (typeof size !== 'bigint') throw new QmpError(`Parameter '${name}' expects size`);
    const value = Number(size);
    const [min, max] = blockSize ? [512, 2 ** 21] : [0, 2 ** 32 - 1];
    if (value < min || value > max) throw new QmpError(`Property .${name} doesn't take value ${value} (minimum: ${min}, maximum: ${max})`);
    if (blockSize && (value & (value - 1)) !== 0) throw new QmpError(`Property .${name} doesn't take value '${text}', it's not a power of 2`);
    return value;
  };
}

const INT32 = integerReader(-(2 ** 31), 2 ** 31 - 1, 'int32_t');
const UINT16 = integerReader(0, 2 ** 16 - 1, 'uint16_t');
const UINT32 = integerReader(0, 2 ** 32 - 1, 'uint32_t');

export interface DeviceProperty {
  read: PropertyReader;
  /** What qom-get answers when the property was not given (a disk's realize may fill some in). */
  default: PropertyValue;
  /** qom-set may change it on a realized device (bootindex); others are refused. */
  settableAfterRealize?: boolean;
}

/** The block device properties every disk model has (QEMU's DEFINE_BLOCK_PROPERTIES and friends). */
export const DISK_PROPERTIES: Readonly<Record<string, DeviceProperty>> = {
  serial: { read: readString, default: '' },
  bootindex: { read: INT32, default: -1, settableAfterRealize: true },
  'write-cache': { read: readOnOffAuto, default: 'auto' },
  'share-rw': { read: readBool, default: false },
  logical_block_size: { read: sizeReader(true), default: 512 },
  physical_block_size: { read: sizeReader(true), default: 512 },
  min_io_size: { read: sizeReader(false), default: 0 },
  opt_io_size: { read: sizeReader(false), default: 0 },
  discard_granularity: { read: sizeReader(false), default: 2 ** 32 - 1 },
};

/** Further properties of one model, by model name. */
export const MODEL_PROPERTIES: Readonly<Record<string, Readonly<Record<string, DeviceProperty>>>> = {
  'virtio-blk-pci': {
    'num-queues': { read: UINT16, default: 1 },
    'queue-size': { read: UINT16, default: 256 },
  },
  'scsi-hd': {
    'scsi-id': { read: UINT32, default: 0 },
    lun: { read: UINT32, default: 0 },
    channel: { read: UINT32, default: 0 },
  },
  'ide-hd': {
    unit: { read: UINT32, default: 0 },
  },
};

/** blkconf_blocksizes' checks, in QEMU's order. */
export function checkBlockSizes(values: ReadonlyMap<string, PropertyValue>): void {
  const get = (name: string) => Number(values.get(name) ?? DISK_PROPERTIES[name]!.default);
  const logical = get('logical_block_size');
  if (logical > get('physical_block_size')) throw new QmpError('logical_block_size > physical_block_size not supported');
  if (get('min_io_size') % logical !== 0) throw new QmpError('min_io_size must be a multiple of logical_block_size');
  if (get('opt_io_size') % logical !== 0) throw new QmpError('opt_io_size must be a multiple of logical_block_size');
  const discard = get('discard_granularity');
  if (discard !== 2 ** 32 - 1 && discard % logical !== 0) throw new QmpError('discard_granularity must be a multiple of logical_block_size');
}

/** virtio-blk's queue checks, in QEMU's order. */
export function checkVirtioQueues(values: ReadonlyMap<string, PropertyValue>): void {
  if (values.get('num-queues') === 0) throw new QmpError('num-queues property must be larger than 0');
  const queueSize = Number(values.get('queue-size') ?? 256);
  if (queueSize <= 2) throw new QmpError(`invalid queue-size property (${queueSize}), must be > 2`);
  if ((queueSize & (queueSize - 1)) !== 0 || queueSize > 1024) {
    throw new QmpError(`invalid queue-size property (${queueSize}), must be a power of 2 (max 1024)`);
  }
}
