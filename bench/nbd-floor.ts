/**
 * node --import tsx bench/nbd-floor.ts SOCKET DATA_FILE MAP_JSON
 *
 * Node's floor for serving NBD: a bare `net.Server` with no block layer, to set
 * qblockd's NBD figures against what any Node server pays per request. It speaks
 * just enough of the protocol for nbdcopy and qemu-img map (fixed newstyle,
 * structured replies, one meta context, NBD_OPT_GO) and serves two exports:
 * - `data`: DATA_FILE as a raw image, each read a `pread` on libuv's thread pool
 *   into a reused buffer, answered as soon as it is done (NBD allows any order);
 * - `bitmap`: a dirty bitmap answered from memory, from the extents of a
 *   `qemu-img map --output=json` of it (dirty where that map says data: false,
 *   as qemu-img's x-dirty-bitmap reports it), one extent per request.
 * Prints "ready" once it listens. A client that breaks the protocol, or asks for more than
 * an export holds, is hung up on; the others are served on.
 */
import fs from 'node:fs';
import net from 'node:net';
import {
  ChunkType,
  Command,
  DIRTY_FLAG,
  ExportFlag,
  Info,
  MAX_BUFFER_SIZE,
  OPTION_HEADER_SIZE,
  Option,
  REQUEST_SIZE,
  Reply,
  ReplyFlag,
  decodeOptionHeader,
  decodeRequest,
  encodeBlockStatusChunk,
  encodeChunkHeader,
  encodeExportInfo,
  encodeGreeting,
  encodeInfo,
  encodeMetaContext,
  encodeOptionReply,
  type Extent,
  type Request,
} from '../src/nbd/protocol.ts';

const [socketPath, dataPath, mapPath] = process.argv.slice(2) as [string, string, string];
const CONTEXT_ID = 1;
const EXPORT_FLAGS = ExportFlag.HAS_FLAGS | ExportFlag.READ_ONLY | ExportFlag.SEND_DF | ExportFlag.CAN_MULTI_CONN;

const dataFd = fs.openSync(dataPath, 'r');
const dataSize = fs.fstatSync(dataFd).size;
const freeBuffers: Buffer[] = [];

const mapped = JSON.parse(fs.readFileSync(mapPath, 'utf8')) as Array<{ start: number; length: number; data: boolean }>;
const extentStarts = mapped.map((extent) => extent.start);
const bitmapSize = mapped.length ? mapped[mapped.length - 1]!.start + mapped[mapped.length - 1]!.length : 0;

/** The recorded extent holding `offset`, cut to the request. */
function bitmapExtent(offset: number, length: number): Extent {
  let low = 0;
  let high = extentStarts.length - 1;
  while (low < high) {
    const middle = (low + high + 1) >>> 1;
    if (extentStarts[middle]! <= offset) low = middle;
    else high = middle - 1;
  }
  const extent = mapped[low]!;
  return { length: Math.min(extent.start + extent.length, offset + length) - offset, flags: extent.data ? 0 : DIRTY_FLAG };
}

function serve(socket: net.Socket): void {
  let pending: Buffer = Buffer.alloc(0);
  let negotiated = false;
  let flagsRead = false;
  let exportName = '';
  socket.on('error', () => socket.destroy());
  socket.write(encodeGreeting());
  socket.on('data', (chunk: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    try {
      for (;;) {
        if (!flagsRead) {
          if (pending.length < 4) return;
          pending = pending.subarray(4);
          flagsRead = true;
        } else if (!negotiated) {
          if (pending.length < OPTION_HEADER_SIZE) return;
          const { option, length } = decodeOptionHeader(pending);
          if (length > MAX_BUFFER_SIZE) throw new Error('option too long');
          if (pending.length < OPTION_HEADER_SIZE + length) return;
          const payload = pending.subarray(OPTION_HEADER_SIZE, OPTION_HEADER_SIZE + length);
          pending = pending.subarray(OPTION_HEADER_SIZE + length);
          negotiated = answerOption(socket, option, payload, (name) => (exportName = name));
        } else {
          if (pending.length < REQUEST_SIZE) return;
          const request = decodeRequest(pending.subarray(0, REQUEST_SIZE));
          pending = pending.subarray(REQUEST_SIZE);
          if (request.type === Command.DISC) {
            socket.end();
            return;
          }
          answerRequest(socket, exportName, request);
        }
      }
    } catch {
      socket.destroy();
    }
  });
}

/** Answers one option; true once the client has entered transmission. */
function answerOption(socket: net.Socket, option: number, payload: Buffer, chooseExport: (name: string) => void): boolean {
  const nameLength = payload.length >= 4 ? payload.readUInt32BE(0) : 0;
  switch (option) {
    case Option.STRUCTURED_REPLY:
      socket.write(encodeOptionReply(option, Reply.ACK));
      return false;
    case Option.SET_META_CONTEXT: {
      let at = 4 + nameLength + 4;
      for (let count = payload.readUInt32BE(4 + nameLength); count > 0; count--) {
        const length = payload.readUInt32BE(at);
        socket.write(encodeOptionReply(option, Reply.META_CONTEXT, encodeMetaContext(CONTEXT_ID, payload.toString('utf8', at + 4, at + 4 + length))));
        at += 4 + length;
      }
      socket.write(encodeOptionReply(option, Reply.ACK));
      return false;
    }
    case Option.GO: {
      const name = payload.toString('utf8', 4, 4 + nameLength);
      chooseExport(name);
      const size = name === 'bitmap' ? bitmapSize : dataSize;
      socket.write(encodeOptionReply(option, Reply.INFO, encodeInfo(Info.EXPORT, encodeExportInfo(size, EXPORT_FLAGS))));
      socket.write(encodeOptionReply(option, Reply.ACK));
      return true;
    }
    default:
      socket.write(encodeOptionReply(option, Reply.ERR_UNSUP));
      return false;
  }
}

function answerRequest(socket: net.Socket, exportName: string, request: Request): void {
  const { handle, offset, length } = request;
  const size = exportName === 'bitmap' ? bitmapSize : dataSize;
  if (offset + length > size) throw new Error('request past the export');
  if (request.type === Command.BLOCK_STATUS) {
    const extent = exportName === 'bitmap' ? bitmapExtent(offset, length) : { length, flags: 0 };
    socket.write(encodeBlockStatusChunk(handle, true, CONTEXT_ID, [extent]));
  } else if (request.type === Command.READ) {
    if (length > MAX_BUFFER_SIZE) throw new Error('read too long');
    const reused = freeBuffers.pop();
    const buffer = reused && reused.length >= length ? reused : Buffer.allocUnsafeSlow(length);
    fs.read(dataFd, buffer, 0, length, offset, (error) => {
      if (error) return socket.destroy();
      const head = Buffer.alloc(28);
      encodeChunkHeader(handle, ReplyFlag.DONE, ChunkType.OFFSET_DATA, 8 + length).copy(head);
      head.writeUInt32BE(Math.floor(offset / 2 ** 32), 20);
      head.writeUInt32BE(offset >>> 0, 24);
      socket.cork();
      socket.write(head);
      socket.write(buffer.subarray(0, length), () => freeBuffers.push(buffer));
      socket.uncork();
    });
  } else {
    socket.write(encodeChunkHeader(handle, ReplyFlag.DONE, ChunkType.NONE, 0));
  }
}

try {
  fs.unlinkSync(socketPath);
} catch {
  // nothing there yet
}
net.createServer(serve).listen(socketPath, () => console.log('ready'));
