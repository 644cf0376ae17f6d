/**
 * node --import tsx bench/nbd-floor.ts SOCKET DATA_FILE MAP_JSON [stream|handle]
 *
 * Node's floor for serving NBD: a bare Node server with no block layer, to set
 * qblockd's NBD figures against what any Node server pays per request. It speaks
 * just enough of the protocol for nbdcopy and qemu-img map (fixed newstyle,
 * structured replies, one meta context, NBD_OPT_GO) and serves two exports:
 * - `data`: DATA_FILE as a raw image, each read a `pread` on libuv's thread pool
 *   into a reused buffer, answered as soon as it is done (NBD allows any order);
 * - `bitmap`: a dirty bitmap answered from memory, from the extents of a
 *   `qemu-img map --output=json` of it (dirty where that map says data: false,
 *   as qemu-img's x-dirty-bitmap reports it), one extent per request.
 * Two transports carry the same sessions:
 * - `stream` (the default): `net.Server` and its sockets, the public API qblockd uses;
 * - `handle`: libuv's pipe handle straight from Node's internal bindings
 *   (`process.binding('pipe_wrap')`, deprecated and undocumented), reading in its
 *   read callback and writing with one `writev` per reply, none of the stream
 *   machinery in between: what Node could do per request below its public API.
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

const [socketPath, dataPath, mapPath, transport = 'stream'] = process.argv.slice(2) as [string, string, string, string?];
if (transport !== 'stream' && transport !== 'handle') throw new Error(`unknown transport ${transport}: stream or handle`);
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

/** How a session reaches its client: whole replies out, and hanging up. */
interface Link {
  /** Writes the chunks as one reply; `sent` runs once the kernel has them all. */
  send(chunks: Buffer[], sent?: () => void): void;
  close(): void;
}

/** One client's protocol state; returns what to do with each chunk of bytes it sends. */
function session(link: Link): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0);
  let negotiated = false;
  let flagsRead = false;
  let closed = false;
  let exportName = '';
  const close = () => {
    closed = true;
    link.close();
  };
  link.send([encodeGreeting()]);
  return (chunk) => {
    if (closed) return;
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
          negotiated = answerOption(link, option, payload, (name) => (exportName = name));
        } else {
          if (pending.length < REQUEST_SIZE) return;
          const request = decodeRequest(pending.subarray(0, REQUEST_SIZE));
          pending = pending.subarray(REQUEST_SIZE);
          if (request.type === Command.DISC) return close();
          answerRequest(link, exportName, request, close);
        }
      }
    } catch {
      close();
    }
  };
}

/** Answers one option; true once the client has entered transmission. */
function answerOption(link: Link, option: number, payload: Buffer, chooseExport: (name: string) => void): boolean {
  const nameLength = payload.length >= 4 ? payload.readUInt32BE(0) : 0;
  switch (option) {
    case Option.STRUCTURED_REPLY:
      link.send([encodeOptionReply(option, Reply.ACK)]);
      return false;
    case Option.SET_META_CONTEXT: {
      const replies: Buffer[] = [];
      let at = 4 + nameLength + 4;
      for (let count = payload.readUInt32BE(4 + nameLength); count > 0; count--) {
        const length = payload.readUInt32BE(at);
        replies.push(encodeOptionReply(option, Reply.META_CONTEXT, encodeMetaContext(CONTEXT_ID, payload.toString('utf8', at + 4, at + 4 + length))));
        at += 4 + length;
      }
      link.send([...replies, encodeOptionReply(option, Reply.ACK)]);
      return false;
    }
    case Option.GO: {
      const name = payload.toString('utf8', 4, 4 + nameLength);
      chooseExport(name);
      const size = name === 'bitmap' ? bitmapSize : dataSize;
      link.send([encodeOptionReply(option, Reply.INFO, encodeInfo(Info.EXPORT, encodeExportInfo(size, EXPORT_FLAGS))), encodeOptionReply(option, Reply.ACK)]);
      return true;
    }
    default:
      link.send([encodeOptionReply(option, Reply.ERR_UNSUP)]);
      return false;
  }
}

function answerRequest(link: Link, exportName: string, request: Request, close: () => void): void {
  const { handle, offset, length } = request;
  const size = exportName === 'bitmap' ? bitmapSize : dataSize;
  if (offset + length > size) throw new Error('request past the export');
  if (request.type === Command.BLOCK_STATUS) {
    const extent = exportName === 'bitmap' ? bitmapExtent(offset, length) : { length, flags: 0 };
    link.send([encodeBlockStatusChunk(handle, true, CONTEXT_ID, [extent])]);
  } else if (request.type === Command.READ) {
    if (length > MAX_BUFFER_SIZE) throw new Error('read too long');
    const reused = freeBuffers.pop();
    const buffer = reused && reused.length >= length ? reused : Buffer.allocUnsafeSlow(length);
    fs.read(dataFd, buffer, 0, length, offset, (error) => {
      if (error) return close();
      const head = Buffer.alloc(28);
      encodeChunkHeader(handle, ReplyFlag.DONE, ChunkType.OFFSET_DATA, 8 + length).copy(head);
      head.writeUInt32BE(Math.floor(offset / 2 ** 32), 20);
      head.writeUInt32BE(offset >>> 0, 24);
      link.send([head, buffer.subarray(0, length)], () => freeBuffers.push(buffer));
    });
  } else {
    link.send([encodeChunkHeader(handle, ReplyFlag.DONE, ChunkType.NONE, 0)]);
  }
}

function listenWithStreams(): void {
  net
    .createServer((socket) => {
      socket.on('error', () => socket.destroy());
      const onBytes = session({
        send(chunks, sent) {
          socket.cork();
          chunks.forEach((chunk, i) => socket.write(chunk, i === chunks.length - 1 ? sent : undefined));
          socket.uncork();
        },
        close: () => socket.end(),
      });
      socket.on('data', onBytes);
    })
    .listen(socketPath, () => console.log('ready'));
}

/** The parts of Node 20's internal pipe and stream bindings the `handle` transport uses. */
interface PipeHandle {
  bind(path: string): number;
  listen(backlog: number): number;
  readStart(): number;
  writev(request: WriteRequest, chunks: Buffer[], allBuffers: true): number;
  close(): void;
  onconnection: (status: number, client: PipeHandle) => void;
  onread: (arrayBuffer: ArrayBuffer) => void;
}
interface WriteRequest {
  handle: PipeHandle;
  async: boolean;
  chunks: Buffer[];
  oncomplete: (status: number) => void;
}
interface PipeBindings {
  Pipe: new (type: number) => PipeHandle;
  constants: { SERVER: number };
}
interface StreamBindings {
  WriteWrap: new () => WriteRequest;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kArrayBufferOffset: number;
  kLastWriteWasAsync: number;
}

function listenWithHandles(): void {
  const internal = process as unknown as { binding(name: string): unknown };
  const { Pipe, constants } = internal.binding('pipe_wrap') as PipeBindings;
  const stream = internal.binding('stream_wrap') as StreamBindings;
  const state = stream.streamBaseState;
  const server = new Pipe(constants.SERVER);
  if (server.bind(socketPath) !== 0 || server.listen(511) !== 0) throw new Error(`cannot listen on ${socketPath}`);
  server.onconnection = (status, client) => {
    if (status !== 0) return;
    let open = true;
    const close = () => {
      if (open) client.close();
      open = false;
    };
    const onBytes = session({
      send(chunks, sent) {
        if (!open) return;
        const request = new stream.WriteWrap();
        request.handle = client;
        request.async = false;
        request.chunks = chunks; // held until the write completes
        request.oncomplete = (result) => (result < 0 ? close() : sent?.());
        if (client.writev(request, chunks, true) !== 0) return close();
        if (!state[stream.kLastWriteWasAsync]) sent?.();
      },
      close,
    });
    client.onread = (arrayBuffer) => {
      const read = state[stream.kReadBytesOrError]!;
      if (read < 0) close();
      else if (read > 0) onBytes(Buffer.from(arrayBuffer, state[stream.kArrayBufferOffset], read));
    };
    client.readStart();
  };
  console.log('ready');
}

try {
  fs.unlinkSync(socketPath);
} catch {
  // nothing there yet
}
if (transport === 'handle') listenWithHandles();
else listenWithStreams();
