/**
 * The NBD wire format (NetworkBlockDevice/nbd doc/proto.md) as QEMU 7.2's
 * server speaks it: constants, and pure encoders and decoders. Every integer
 * on the wire is big-endian.
 */
import { constants } from 'node:os';

export const NBD_MAGIC = Buffer.from('NBDMAGIC', 'latin1');
export const OPTS_MAGIC = 0x49484156454f5054n; // "IHAVEOPT"
export const REPLY_MAGIC = 0x3e889045565a9n;
export const REQUEST_MAGIC = 0x25609513;
export const SIMPLE_REPLY_MAGIC = 0x67446698;
export const STRUCTURED_REPLY_MAGIC = 0x668e33ef;

/** Longest name, description or query string QEMU accepts. */
export const MAX_STRING_SIZE = 4096;
/** Longest option payload, read or write QEMU accepts. */
export const MAX_BUFFER_SIZE = 32 * 1024 * 1024;
/** Most extents one block status chunk carries (1 MiB of extents). */
export const MAX_BLOCK_STATUS_EXTENTS = (1024 * 1024) / 8;

export const HandshakeFlag = { FIXED_NEWSTYLE: 1, NO_ZEROES: 2 } as const;
export const ClientFlag = { FIXED_NEWSTYLE: 1, NO_ZEROES: 2 } as const;

export const Option = {
  EXPORT_NAME: 1,
  ABORT: 2,
  LIST: 3,
  PEEK_EXPORT: 4,
  STARTTLS: 5,
  INFO: 6,
  GO: 7,
  STRUCTURED_REPLY: 8,
  LIST_META_CONTEXT: 9,
  SET_META_CONTEXT: 10,
} as const;

/** The names QEMU prints for options in its error messages. */
const OPTION_NAMES: Record<number, string> = {
  [Option.EXPORT_NAME]: 'export name',
  [Option.ABORT]: 'abort',
  [Option.LIST]: 'list',
  [Option.PEEK_EXPORT]: 'peek export',
  [Option.STARTTLS]: 'starttls',
  [Option.INFO]: 'info',
  [Option.GO]: 'go',
  [Option.STRUCTURED_REPLY]: 'structured reply',
  [Option.LIST_META_CONTEXT]: 'list meta context',
  [Option.SET_META_CONTEXT]: 'set meta context',
};

export function optionName(option: number): string {
  return OPTION_NAMES[option] ?? '<unknown>';
}

export const Reply = {
  ACK: 1,
  SERVER: 2,
  INFO: 3,
  META_CONTEXT: 4,
  ERR_UNSUP: 0x80000001,
  ERR_POLICY: 0x80000002,
  ERR_INVALID: 0x80000003,
  ERR_PLATFORM: 0x80000004,
  ERR_TLS_REQD: 0x80000005,
  ERR_UNKNOWN: 0x80000006,
  ERR_SHUTDOWN: 0x80000007,
  ERR_BLOCK_SIZE_REQD: 0x80000008,
  ERR_TOO_BIG: 0x80000009,
} as const;

export const Info = { EXPORT: 0, NAME: 1, DESCRIPTION: 2, BLOCK_SIZE: 3 } as const;

export const ExportFlag = {
  HAS_FLAGS: 1 << 0,
  READ_ONLY: 1 << 1,
  SEND_FLUSH: 1 << 2,
  SEND_FUA: 1 << 3,
  ROTATIONAL: 1 << 4,
  SEND_TRIM: 1 << 5,
  SEND_WRITE_ZEROES: 1 << 6,
  SEND_DF: 1 << 7,
  CAN_MULTI_CONN: 1 << 8,
  SEND_RESIZE: 1 << 9,
  SEND_CACHE: 1 << 10,
  SEND_FAST_ZERO: 1 << 11,
} as const;

export const Command = {
  READ: 0,
  WRITE: 1,
  DISC: 2,
  FLUSH: 3,
  TRIM: 4,
  CACHE: 5,
  WRITE_ZEROES: 6,
  BLOCK_STATUS: 7,
} as const;

const COMMAND_NAMES: Record<number, string> = {
  [Command.READ]: 'read',
  [Command.WRITE]: 'write',
  [Command.DISC]: 'disconnect',
  [Command.FLUSH]: 'flush',
  [Command.TRIM]: 'trim',
  [Command.CACHE]: 'cache',
  [Command.WRITE_ZEROES]: 'write zeroes',
  [Command.BLOCK_STATUS]: 'block status',
};

export function commandName(command: number): string {
  return COMMAND_NAMES[command] ?? '<unknown>';
}

export const CommandFlag = { FUA: 1, NO_HOLE: 2, DF: 4, REQ_ONE: 8, FAST_ZERO: 16 } as const;

export const ReplyFlag = { DONE: 1 } as const;

export const ChunkType = {
  NONE: 0,
  OFFSET_DATA: 1,
  OFFSET_HOLE: 2,
  BLOCK_STATUS: 5,
  ERROR: 0x8001,
  ERROR_OFFSET: 0x8002,
} as const;

/** Error numbers on the wire (not the host's errno values). */
export const NbdError = {
  EPERM: 1,
  EIO: 5,
  ENOMEM: 12,
  EINVAL: 22,
  ENOSPC: 28,
  EOVERFLOW: 75,
  ENOTSUP: 95,
  ESHUTDOWN: 108,
} as const;

const HOST = constants.errno;
/** The wire error for each host errno QEMU's server tells apart (system_errno_to_nbd_errno); any other is EINVAL. */
const WIRE_ERROR_FOR_ERRNO = new Map<number, number>([
  [HOST.EPERM, NbdError.EPERM],
  [HOST.EROFS, NbdError.EPERM],
  [HOST.EIO, NbdError.EIO],
  [HOST.ENOMEM, NbdError.ENOMEM],
  [HOST.EDQUOT, NbdError.ENOSPC],
  [HOST.EFBIG, NbdError.ENOSPC],
  [HOST.ENOSPC, NbdError.ENOSPC],
  [HOST.EOVERFLOW, NbdError.EOVERFLOW],
  [HOST.ENOTSUP, NbdError.ENOTSUP],
  [HOST.EOPNOTSUPP, NbdError.ENOTSUP],
  // Node's errno table leaves out ESHUTDOWN (108 on Linux).
  [108, NbdError.ESHUTDOWN],
]);

export function wireErrorForErrno(errno: number): number {
  return WIRE_ERROR_FOR_ERRNO.get(errno) ?? NbdError.EINVAL;
}

/** base:allocation flags. */
export const StateFlag = { HOLE: 1, ZERO: 2 } as const;
/** qemu:dirty-bitmap:NAME flag. */
export const DIRTY_FLAG = 1;

export const OPTION_HEADER_SIZE = 16;
export const REQUEST_SIZE = 28;

export interface OptionHeader {
  magic: bigint;
  option: number;
  length: number;
}

export interface Request {
  magic: number;
  flags: number;
  type: number;
  handle: Buffer;
  /** The 64-bit offset as its two 32-bit halves, as sent; `offset` is exact while offsetHigh < 2^21. */
  offsetHigh: number;
  offsetLow: number;
  offset: number;
  length: number;
}

/** A request's offset as sent, exact at any size (for messages). */
export function requestOffsetText(request: Request): string {
  return ((BigInt(request.offsetHigh) << 32n) | BigInt(request.offsetLow)).toString();
}

export interface Extent {
  length: number;
  flags: number;
}

/** The server's first 18 bytes: NBDMAGIC, IHAVEOPT and the handshake flags. */
export function encodeGreeting(): Buffer {
  const out = Buffer.alloc(18);
  NBD_MAGIC.copy(out, 0);
  out.writeBigUInt64BE(OPTS_MAGIC, 8);
  out.writeUInt16BE(HandshakeFlag.FIXED_NEWSTYLE | HandshakeFlag.NO_ZEROES, 16);
  return out;
}

export function decodeOptionHeader(bytes: Buffer): OptionHeader {
  return { magic: bytes.readBigUInt64BE(0), option: bytes.readUInt32BE(8), length: bytes.readUInt32BE(12) };
}

export function encodeOptionReply(option: number, type: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(20);
  header.writeBigUInt64BE(REPLY_MAGIC, 0);
  header.writeUInt32BE(option, 8);
  header.writeUInt32BE(type, 12);
  header.writeUInt32BE(payload.length, 16);
  return Buffer.concat([header, payload]);
}

export function encodeOptionError(option: number, type: number, message: string): Buffer {
  return encodeOptionReply(option, type, Buffer.from(message, 'utf8'));
}

/** NBD_REP_SERVER payload: name length, name, description. */
export function encodeServerEntry(name: string, description: string): Buffer {
  const nameBytes = Buffer.from(name, 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(nameBytes.length);
  return Buffer.concat([length, nameBytes, Buffer.from(description, 'utf8')]);
}

export function encodeInfo(info: number, body: Buffer): Buffer {
  const type = Buffer.alloc(2);
  type.writeUInt16BE(info);
  return Buffer.concat([type, body]);
}

export function encodeExportInfo(size: number, flags: number): Buffer {
  const body = Buffer.alloc(10);
  body.writeBigUInt64BE(BigInt(size), 0);
  body.writeUInt16BE(flags, 8);
  return body;
}

export function encodeBlockSizes(minimum: number, preferred: number, maximum: number): Buffer {
  const body = Buffer.alloc(12);
  body.writeUInt32BE(minimum, 0);
  body.writeUInt32BE(preferred, 4);
  body.writeUInt32BE(maximum, 8);
  return body;
}

/** NBD_REP_META_CONTEXT payload: context id, then the context's name. */
export function encodeMetaContext(id: number, name: string): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(id);
  return Buffer.concat([head, Buffer.from(name, 'utf8')]);
}

/** The reply to NBD_OPT_EXPORT_NAME: size, flags, and 124 zero bytes unless the client asked for none. */
export function encodeExportNameReply(size: number, flags: number, noZeroes: boolean): Buffer {
  const out = Buffer.alloc(noZeroes ? 10 : 134);
  out.writeBigUInt64BE(BigInt(size), 0);
  out.writeUInt16BE(flags, 8);
  return out;
}

/** Decodes a request header; its handle is a view of `bytes`, which must not be reused. */
export function decodeRequest(bytes: Buffer): Request {
  const offsetHigh = bytes.readUInt32BE(16);
  const offsetLow = bytes.readUInt32BE(20);
  return {
    magic: bytes.readUInt32BE(0),
    flags: bytes.readUInt16BE(4),
    type: bytes.readUInt16BE(6),
    handle: bytes.subarray(8, 16),
    offsetHigh,
    offsetLow,
    offset: offsetHigh * 0x100000000 + offsetLow,
    length: bytes.readUInt32BE(24),
  };
}

export function encodeSimpleReply(handle: Buffer, error: number): Buffer {
  const out = Buffer.alloc(16);
  out.writeUInt32BE(SIMPLE_REPLY_MAGIC, 0);
  out.writeUInt32BE(error, 4);
  handle.copy(out, 8);
  return out;
}

/** A structured reply chunk header for a payload of `length` bytes. */
export function encodeChunkHeader(handle: Buffer, flags: number, type: number, length: number): Buffer {
  return writeChunkHeader(Buffer.alloc(20), handle, flags, type, length);
}

/** Writes a chunk header into the first 20 bytes of `out`, which the chunk's payload follows. */
function writeChunkHeader(out: Buffer, handle: Buffer, flags: number, type: number, length: number): Buffer {
  out.writeUInt32BE(STRUCTURED_REPLY_MAGIC, 0);
  out.writeUInt16BE(flags, 4);
  out.writeUInt16BE(type, 6);
  handle.copy(out, 8);
  out.writeUInt32BE(length, 16);
  return out;
}

/**
 * Room left before a read's data in its buffer for the reply's head (an
 * OFFSET_DATA chunk's header and offset; a simple reply's 16 bytes fit too), so
 * a reply leaves as one buffer.
 */
export const DATA_HEAD_ROOM = 28;

/** The OFFSET_DATA chunk of `buffer`, whose data starts at DATA_HEAD_ROOM: its head is written in front of it. */
export function dataChunkAround(buffer: Buffer, handle: Buffer, final: boolean, offset: number): Buffer {
  writeChunkHeader(buffer, handle, final ? ReplyFlag.DONE : 0, ChunkType.OFFSET_DATA, 8 + buffer.length - DATA_HEAD_ROOM);
  buffer.writeUInt32BE(Math.floor(offset / 0x100000000), 20);
  buffer.writeUInt32BE(offset >>> 0, 24);
  return buffer;
}

/** The successful simple reply carrying the data of `buffer` (from DATA_HEAD_ROOM on). */
export function simpleReplyAround(buffer: Buffer, handle: Buffer): Buffer {
  const message = buffer.subarray(DATA_HEAD_ROOM - 16);
  message.writeUInt32BE(SIMPLE_REPLY_MAGIC, 0);
  message.writeUInt32BE(0, 4);
  handle.copy(message, 8);
  return message;
}

export function encodeHoleChunk(handle: Buffer, final: boolean, offset: number, length: number): Buffer {
  const header = encodeChunkHeader(handle, final ? ReplyFlag.DONE : 0, ChunkType.OFFSET_HOLE, 12);
  const body = Buffer.alloc(12);
  body.writeBigUInt64BE(BigInt(offset), 0);
  body.writeUInt32BE(length, 8);
  return Buffer.concat([header, body]);
}

export function encodeErrorChunk(handle: Buffer, error: number, message: string): Buffer {
  const text = Buffer.from(message, 'utf8');
  const header = encodeChunkHeader(handle, ReplyFlag.DONE, ChunkType.ERROR, 6 + text.length);
  const body = Buffer.alloc(6);
  body.writeUInt32BE(error, 0);
  body.writeUInt16BE(text.length, 4);
  return Buffer.concat([header, body, text]);
}

export function encodeDoneChunk(handle: Buffer): Buffer {
  return encodeChunkHeader(handle, ReplyFlag.DONE, ChunkType.NONE, 0);
}

export function encodeBlockStatusChunk(handle: Buffer, final: boolean, contextId: number, extents: Extent[]): Buffer {
  const bodyLength = 4 + 8 * extents.length;
  const out = writeChunkHeader(Buffer.allocUnsafe(20 + bodyLength), handle, final ? ReplyFlag.DONE : 0, ChunkType.BLOCK_STATUS, bodyLength);
  out.writeUInt32BE(contextId, 20);
  extents.forEach((extent, index) => {
    out.writeUInt32BE(extent.length, 24 + 8 * index);
    out.writeUInt32BE(extent.flags, 28 + 8 * index);
  });
  return out;
}

/**
 * Collects extents as QEMU does: a run with the same flags as the last one
 * extends it while the sum fits 32 bits; once `limit` extents are held,
 * adding another fails and the list is closed.
 */
export class ExtentList {
  readonly extents: Extent[] = [];
  private full = false;

  constructor(private readonly limit: number) {}

  /** Returns false when the list was full and the extent was not added. */
  add(length: number, flags: number): boolean {
    if (this.full) return false;
    if (length === 0) return true;
    const last = this.extents[this.extents.length - 1];
    if (last && last.flags === flags && last.length + length <= 0xffffffff) {
      last.length += length;
      return true;
    }
    if (this.extents.length >= this.limit) {
      this.full = true;
      return false;
    }
    this.extents.push({ length, flags });
    return true;
  }
}
