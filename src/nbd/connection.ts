import type net from 'node:net';
import { statusRuns, type StatusRun } from '../block/block-status.ts';
import { answerWhenDue } from '../block/throttle/completion.ts';
import { BlockIoError } from '../block/io-error.ts';
import type { BlockExport, ExportClient, ExportManager } from '../block/exports.ts';
import { exportContexts, type MetaContext } from './contexts.ts';
import {
  ClientFlag,
  Command,
  CommandFlag,
  ExportFlag,
  Info,
  MAX_BLOCK_STATUS_EXTENTS,
  MAX_BUFFER_SIZE,
  MAX_STRING_SIZE,
  NbdError,
  OPTS_MAGIC,
  OPTION_HEADER_SIZE,
  Option,
  REQUEST_MAGIC,
  REQUEST_SIZE,
  Reply,
  commandName,
  decodeOptionHeader,
  decodeRequest,
  encodeBlockSizes,
  encodeBlockStatusChunk,
  DATA_HEAD_ROOM,
  dataChunkAround,
  encodeDoneChunk,
  encodeErrorChunk,
  encodeExportInfo,
  encodeExportNameReply,
  encodeGreeting,
  encodeHoleChunk,
  encodeInfo,
  encodeMetaContext,
  encodeOptionError,
  encodeOptionReply,
  encodeServerEntry,
  encodeSimpleReply,
  simpleReplyAround,
  optionName,
  requestOffsetText,
  type Request,
  wireErrorForErrno,
} from './protocol.ts';
import type { BufferPool } from './buffer-pool.ts';
import { ConnectionEnded, SocketReader } from './socket-reader.ts';

/** The client broke the protocol in a way QEMU answers by hanging up. */
class Disconnect extends Error {}

/** The option was fully answered with an error reply; negotiation goes on. */
class OptionAnswered extends Error {}

/** A request refused before it ran: always answered with EINVAL, as QEMU does. */
class RequestRefused extends Error {}

/** Reply bytes a connection may leave unsent before it stops reading requests. */
const PENDING_OUTPUT = 4 * 1024 * 1024;

/** Reads served at once per client, as QEMU's server serves up to MAX_NBD_REQUESTS. */
const READS_IN_FLIGHT = 16;

/** Bytes of reads in flight per client before the next request waits (one larger read is always let through). */
const READ_BYTES_IN_FLIGHT = 4 * 1024 * 1024;

/** QEMU's preferred block size, hard-coded in its server. */
const PREFERRED_BLOCK_SIZE = 4096;

/** One reply message of a read; `pooled`, when there is one, goes back to the buffer pool once the message has left. */
interface ReadReply {
  message: Buffer;
  pooled?: Buffer;
}

interface Selection {
  exported: BlockExport;
  contexts: MetaContext[];
}

/**
 * One NBD client: fixed-newstyle negotiation, then the command loop, as
 * QEMU 7.2's server runs them. Plain reads run side by side (their host
 * reads on the thread pool) and are answered in the order they came; any
 * other request waits until everything before it has been answered, so it
 * sees and replies exactly as if requests ran one at a time. No request is
 * read while more than PENDING_OUTPUT bytes of replies are unsent, so a client
 * that stops reading stops being read: memory stays bounded by a few requests.
 */
export class NbdConnection implements ExportClient {
  readonly closed: Promise<void>;
  private readonly reader: SocketReader;
  private structured = false;
  private fixedNewstyle = false;
  private noZeroes = false;
  /** The current option and how much of its payload is still unread. */
  private option = 0;
  private optionRemaining = 0;
  /** What the last NBD_OPT_SET_META_CONTEXT chose. */
  private meta: Selection | null = null;
  private exported: BlockExport | null = null;
  private contexts: MetaContext[] = [];
  /** Settles once every reply queued so far has been handed to the socket; never rejects. */
  private replies: Promise<void> = Promise.resolve();
  private readsInFlight = 0;
  private readBytesInFlight = 0;
  private readFinished: (() => void) | null = null;

  constructor(
    private readonly socket: net.Socket,
    private readonly exports: ExportManager,
    private readonly buffers: BufferPool,
    /** Each request counts as activity for the daemon's idle-time memory trim. */
    private readonly noteActivity: () => void,
  ) {
    this.reader = new SocketReader(socket);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    this.closed.then(() => this.leaveExport());
    void this.run();
  }

  disconnect(): void {
    this.close();
  }

  close(): void {
    this.socket.destroy();
  }

  private async run(): Promise<void> {
    try {
      await this.send(encodeGreeting());
      if (!(await this.negotiate())) return;
      await this.serveRequests();
    } catch {
      // A client that breaks the protocol or goes away is hung up on; nothing it does may end the daemon.
    } finally {
      // The export learns at once that the client has gone, before any later QMP command is read.
      this.leaveExport();
      this.close();
    }
  }

  private leaveExport(): void {
    if (this.exported) this.exports.detach(this.exported, this);
  }

  // ---- negotiation ----

  /** Returns true when the client entered transmission. */
  private async negotiate(): Promise<boolean> {
    let flags = (await this.reader.read(4)).readUInt32BE(0);
    if (flags & ClientFlag.FIXED_NEWSTYLE) this.fixedNewstyle = true;
    if (flags & ClientFlag.NO_ZEROES) this.noZeroes = true;
    flags &= ~(ClientFlag.FIXED_NEWSTYLE | ClientFlag.NO_ZEROES);
    if (flags !== 0) throw new Disconnect('unknown client flags');
    for (;;) {
      const header = decodeOptionHeader(await this.reader.read(OPTION_HEADER_SIZE));
      if (header.magic !== OPTS_MAGIC) throw new Disconnect('bad option magic');
      if (header.length > MAX_BUFFER_SIZE) throw new Disconnect('option too long');
      this.option = header.option;
      this.optionRemaining = header.length;
      if (!this.fixedNewstyle && header.option !== Option.EXPORT_NAME) throw new Disconnect('unsupported option');
      try {
        const outcome = await this.handleOption(header.option, header.length);
        if (outcome !== 'continue') return outcome === 'transmission';
      } catch (error) {
        if (!(error instanceof OptionAnswered)) throw error;
      }
    }
  }

  private async handleOption(option: number, length: number): Promise<'continue' | 'transmission' | 'abort'> {
    switch (option) {
      case Option.LIST:
        if (length) return this.rejectLength();
        for (const exported of this.exports.offered()) {
          await this.send(encodeOptionReply(option, Reply.SERVER, encodeServerEntry(exported.name, exported.description ?? '')));
        }
        await this.send(encodeOptionReply(option, Reply.ACK));
        return 'continue';
      case Option.ABORT:
        try {
          await this.send(encodeOptionReply(option, Reply.ACK));
        } catch {
          // the client may hang up at once
        }
        return 'abort';
      case Option.EXPORT_NAME:
        return this.handleExportName(length);
      case Option.INFO:
      case Option.GO:
        return this.handleInfo(option);
      case Option.STARTTLS:
        if (length) return this.rejectLength();
        await this.send(encodeOptionError(option, Reply.ERR_POLICY, 'TLS not configured'));
        return 'continue';
      case Option.STRUCTURED_REPLY:
        if (length) return this.rejectLength();
        if (this.structured) {
          await this.send(encodeOptionError(option, Reply.ERR_INVALID, 'structured reply already negotiated'));
        } else {
          this.structured = true;
          await this.send(encodeOptionReply(option, Reply.ACK));
        }
        return 'continue';
      case Option.LIST_META_CONTEXT:
      case Option.SET_META_CONTEXT:
        await this.handleMetaContexts(option);
        return 'continue';
      default:
        await this.dropOption(Reply.ERR_UNSUP, `Unsupported option ${option} (${optionName(option)})`);
        return 'continue';
    }
  }

  private async handleExportName(length: number): Promise<'transmission'> {
    if (length > MAX_STRING_SIZE) throw new Disconnect('export name too long');
    const name = (await this.reader.read(length)).toString('utf8');
    this.optionRemaining = 0;
    const exported = this.exports.findByName(name);
    if (!exported) throw new Disconnect('export not found');
    await this.send(encodeExportNameReply(exported.size, this.exportFlags(exported), this.noZeroes));
    this.enter(exported);
    return 'transmission';
  }

  private async handleInfo(option: number): Promise<'continue' | 'transmission'> {
    const name = await this.readName();
    const requests = (await this.readOption(2)).readUInt16BE(0);
    let sendName = false;
    for (let i = 0; i < requests; i++) {
      if ((await this.readOption(2)).readUInt16BE(0) === Info.NAME) sendName = true;
    }
    if (this.optionRemaining) return this.rejectLength();
    const exported = this.exports.findByName(name.toString('utf8'));
    if (!exported) {
      await this.send(encodeOptionError(option, Reply.ERR_UNKNOWN, `export '${sanitizedName(name)}' not present`));
      return 'continue';
    }
    if (sendName) await this.send(encodeOptionReply(option, Reply.INFO, encodeInfo(Info.NAME, name)));
    if (exported.description !== undefined) {
      await this.send(encodeOptionReply(option, Reply.INFO, encodeInfo(Info.DESCRIPTION, Buffer.from(exported.description, 'utf8'))));
    }
    // qblockd's nodes take requests at any byte alignment, so the minimum is 1 whether asked for or not.
    const sizes = encodeBlockSizes(1, PREFERRED_BLOCK_SIZE, MAX_BUFFER_SIZE);
    await this.send(encodeOptionReply(option, Reply.INFO, encodeInfo(Info.BLOCK_SIZE, sizes)));
    await this.send(encodeOptionReply(option, Reply.INFO, encodeInfo(Info.EXPORT, encodeExportInfo(exported.size, this.exportFlags(exported)))));
    await this.send(encodeOptionReply(option, Reply.ACK));
    if (option !== Option.GO) return 'continue';
    this.enter(exported);
    return 'transmission';
  }

  private async handleMetaContexts(option: number): Promise<void> {
    if (option === Option.SET_META_CONTEXT && !this.structured) {
      await this.dropOption(Reply.ERR_INVALID, `request option '${optionName(option)}' when structured reply is not negotiated`);
      return;
    }
    const listing = option === Option.LIST_META_CONTEXT;
    if (!listing) this.meta = null;
    const name = await this.readName();
    const exported = this.exports.findByName(name.toString('utf8'));
    if (!exported) {
      await this.dropOption(Reply.ERR_UNKNOWN, `export '${sanitizedName(name)}' not present`);
      return;
    }
    const available = exportContexts(exported);
    const chosen = new Set<MetaContext>();
    const queries = (await this.readOption(4)).readUInt32BE(0);
    if (listing && queries === 0) {
      for (const context of available) chosen.add(context);
    }
    for (let i = 0; i < queries; i++) {
      const length = (await this.readOption(4)).readUInt32BE(0);
      if (length > MAX_STRING_SIZE) {
        await this.skipOption(length);
        continue;
      }
      const query = await this.readOption(length, true);
      for (const context of matchingContexts(available, query.toString('utf8'), listing)) chosen.add(context);
    }
    const contexts = available.filter((context) => chosen.has(context));
    for (const context of contexts) {
      await this.send(encodeOptionReply(option, Reply.META_CONTEXT, encodeMetaContext(listing ? 0 : context.id, context.name)));
    }
    await this.send(encodeOptionReply(option, Reply.ACK));
    if (!listing) this.meta = { exported, contexts };
  }

  private enter(exported: BlockExport): void {
    this.exported = exported;
    this.contexts = this.meta?.exported === exported ? this.meta.contexts : [];
    this.exports.attach(exported, this);
  }

  private exportFlags(exported: BlockExport): number {
    let flags = ExportFlag.HAS_FLAGS | ExportFlag.SEND_FLUSH | ExportFlag.SEND_FUA | ExportFlag.SEND_CACHE;
    if (exported.multiConnection) flags |= ExportFlag.CAN_MULTI_CONN;
    flags |= exported.writable ? ExportFlag.SEND_TRIM | ExportFlag.SEND_WRITE_ZEROES | ExportFlag.SEND_FAST_ZERO : ExportFlag.READ_ONLY;
    if (this.structured) flags |= ExportFlag.SEND_DF;
    return flags;
  }

  /** Reads from the option's payload; asking for more than is left is QEMU's "Inconsistent lengths". */
  private async readOption(length: number, refuseNul = false): Promise<Buffer> {
    if (length > this.optionRemaining) {
      await this.dropOption(Reply.ERR_INVALID, `Inconsistent lengths in option ${optionName(this.option)}`);
      throw new OptionAnswered();
    }
    this.optionRemaining -= length;
    const bytes = await this.reader.read(length);
    if (refuseNul && bytes.includes(0)) {
      await this.dropOption(Reply.ERR_INVALID, `Unexpected embedded NUL in option ${optionName(this.option)}`);
      throw new OptionAnswered();
    }
    return bytes;
  }

  private async skipOption(length: number): Promise<void> {
    if (length > this.optionRemaining) {
      await this.dropOption(Reply.ERR_INVALID, `Inconsistent lengths in option ${optionName(this.option)}`);
      throw new OptionAnswered();
    }
    this.optionRemaining -= length;
    await this.reader.skip(length);
  }

  private async readName(): Promise<Buffer> {
    const length = (await this.readOption(4)).readUInt32BE(0);
    if (length > MAX_STRING_SIZE) {
      await this.dropOption(Reply.ERR_INVALID, `Invalid name length: ${length}`);
      throw new OptionAnswered();
    }
    return this.readOption(length, true);
  }

  private async rejectLength(): Promise<'continue'> {
    await this.dropOption(Reply.ERR_INVALID, `option '${optionName(this.option)}' has unexpected length`);
    return 'continue';
  }

  /** Discards the rest of the option's payload, then answers with an error. */
  private async dropOption(type: number, message: string): Promise<void> {
    await this.reader.skip(this.optionRemaining);
    this.optionRemaining = 0;
    await this.send(encodeOptionError(this.option, type, message));
  }

  // ---- transmission ----

  private async serveRequests(): Promise<void> {
    const exported = this.exported!;
    for (;;) {
      const request = decodeRequest(this.reader.readBuffered(REQUEST_SIZE) ?? (await this.reader.read(REQUEST_SIZE)));
      this.noteActivity();
      if (this.runsAlongside(request, exported)) {
        if (!this.hasRoomFor(request.length)) await this.roomFor(request.length);
        // Requests the reader still holds from a client that has gone are not served.
        if (this.socket.destroyed) throw new ConnectionEnded(false);
        this.startRead(request, exported);
        continue;
      }
      if (this.readsInFlight) await this.replies;
      if (request.magic !== REQUEST_MAGIC) throw new Disconnect('bad request magic');
      if (request.type === Command.DISC) return;
      let payloadRead = request.type !== Command.WRITE;
      let payload: Buffer | null = null;
      try {
        this.checkLength(request);
        if (request.type === Command.WRITE) {
          payload = await this.reader.read(request.length);
          payloadRead = true;
        }
        this.checkRequest(request, exported);
      } catch (error) {
        if (!(error instanceof RequestRefused)) throw error;
        await this.sendError(request, NbdError.EINVAL, error.message);
        if (!payloadRead) throw new Disconnect('request handling failed in intermediate state');
        continue;
      }
      // Requests answered at once (block status, writes...) cost no promise.
      const answering = this.handleRequest(request, exported, payload);
      if (answering) await answering;
    }
  }

  /** A read without FUA that will be served: it needs nothing from the requests before it. */
  private runsAlongside(request: Request, exported: BlockExport): boolean {
    if (request.magic !== REQUEST_MAGIC || request.type !== Command.READ || request.flags & CommandFlag.FUA) return false;
    try {
      this.checkLength(request);
      this.checkRequest(request, exported);
      return true;
    } catch {
      return false;
    }
  }

  private hasRoomFor(length: number): boolean {
    return this.readsInFlight === 0 || (this.readsInFlight < READS_IN_FLIGHT && this.readBytesInFlight + length <= READ_BYTES_IN_FLIGHT);
  }

  private async roomFor(length: number): Promise<void> {
    while (!this.hasRoomFor(length)) await new Promise<void>((resolve) => (this.readFinished = resolve));
  }

  /** Starts the read now; its reply goes out after the replies queued before it. */
  private startRead(request: Request, exported: BlockExport): void {
    this.readsInFlight++;
    this.readBytesInFlight += request.length;
    const replies = this.readReplies(request, exported);
    const finished = () => {
      this.readsInFlight--;
      this.readBytesInFlight -= request.length;
      const wake = this.readFinished;
      this.readFinished = null;
      wake?.();
    };
    // A few plain promises per read, no async functions: there is one such chain for every read request.
    this.replies = this.replies
      .then(() => replies)
      .then((ready) => this.sendReadReplies(ready))
      .then(finished, () => {
        this.close();
        finished();
      });
  }

  private checkLength(request: Request): void {
    const buffered = request.type === Command.READ || request.type === Command.WRITE || request.type === Command.CACHE;
    if (buffered && request.length > MAX_BUFFER_SIZE) {
      throw new RequestRefused(`len (${request.length} ) is larger than max len (${MAX_BUFFER_SIZE})`);
    }
  }

  private checkRequest(request: Request, exported: BlockExport): void {
    const modifies = request.type === Command.WRITE || request.type === Command.WRITE_ZEROES || request.type === Command.TRIM;
    if (modifies && !exported.writable) throw new RequestRefused('Export is read-only');
    const size = exported.size;
    // An offset of 2^53 or more is past any size a number holds, and not exact as a number.
    if (request.offsetHigh >= 0x200000 || request.offset > size || request.length > size - request.offset) {
      throw new RequestRefused(`operation past EOF; From: ${requestOffsetText(request)}, Len: ${request.length}, Size: ${exported.size}`);
    }
    let validFlags: number = CommandFlag.FUA;
    if (request.type === Command.READ && this.structured) validFlags |= CommandFlag.DF;
    if (request.type === Command.WRITE_ZEROES) validFlags |= CommandFlag.NO_HOLE | CommandFlag.FAST_ZERO;
    if (request.type === Command.BLOCK_STATUS) validFlags |= CommandFlag.REQ_ONE;
    if (request.flags & ~validFlags) {
      throw new RequestRefused(`unsupported flags for command ${commandName(request.type)} (got 0x${request.flags.toString(16)})`);
    }
  }

  /** Serves one request; a promise only when its reply has to wait (a read, or output to drain). */
  private handleRequest(request: Request, exported: BlockExport, payload: Buffer | null): Promise<void> | undefined {
    const { node } = exported;
    const { offset } = request;
    const fua = (request.flags & CommandFlag.FUA) !== 0;
    switch (request.type) {
      case Command.READ:
        return this.handleRead(request, exported);
      case Command.WRITE:
        return this.reply(request, 'writing to file failed', () => {
          node.write(offset, payload!);
          if (fua) node.flush();
        });
      case Command.WRITE_ZEROES:
        return this.reply(request, 'writing to file failed', () => {
          // Without NO_HOLE the range may be unmapped; FAST_ZERO allows no fallback (QEMU's server).
          node.writeZeroes(offset, request.length, {
            mayUnmap: (request.flags & CommandFlag.NO_HOLE) === 0,
            noFallback: (request.flags & CommandFlag.FAST_ZERO) !== 0,
          });
          if (fua) node.flush();
        });
      case Command.TRIM:
        return this.reply(request, 'discard failed', () => {
          node.discard(offset, request.length);
          if (fua) node.flush();
        });
      case Command.FLUSH:
        return this.reply(request, 'flush failed', () => node.flush());
      case Command.CACHE:
        // Nothing sits between the node and its storage that prefetching would fill.
        return this.reply(request, 'caching data failed', () => {});
      case Command.BLOCK_STATUS:
        return this.handleBlockStatus(request);
      default:
        return this.sendError(request, NbdError.EINVAL, `invalid request type (${request.type}) received`);
    }
  }

  private handleRead(request: Request, exported: BlockExport): Promise<void> {
    return this.readReplies(request, exported).then((replies) => this.sendReadReplies(replies));
  }

  /** Sends the replies in order; a promise only when output has to drain first. */
  private sendReadReplies(replies: ReadReply[], from = 0): Promise<void> | undefined {
    for (let index = from; index < replies.length; index++) {
      const { message, pooled } = replies[index]!;
      const draining = this.send(message, pooled && (() => this.buffers.give(pooled)));
      if (draining) return draining.then(() => this.sendReadReplies(replies, index + 1));
    }
    return undefined;
  }

  /** The reply messages of a read; never rejects. */
  private readReplies(request: Request, exported: BlockExport): Promise<ReadReply[]> {
    const { node } = exported;
    const { handle, length, offset } = request;
    try {
      if (request.flags & CommandFlag.FUA) node.flush();
    } catch (error) {
      return Promise.resolve([{ message: this.errorReply(request, wireError(error), 'flush failed') }]);
    }
    if (this.structured && !(request.flags & CommandFlag.DF) && length) {
      const runs: StatusRun[] = [];
      let statusFailed = false;
      try {
        for (const run of statusRuns(node, offset, length)) runs.push(run);
      } catch {
        statusFailed = true;
      }
      // One run of data is sent as an unsparse read is.
      if (statusFailed || runs.length > 1 || runs[0]!.zero) return this.sparseReadReplies(request, exported, runs, statusFailed);
    }
    const pooled = this.buffers.take(DATA_HEAD_ROOM + length);
    return node.readInto(offset, pooled.subarray(DATA_HEAD_ROOM)).then(
      (): ReadReply[] => {
        if (!this.structured) return [{ message: simpleReplyAround(pooled, handle), pooled }];
        if (length) return [{ message: dataChunkAround(pooled, handle, true, offset), pooled }];
        this.buffers.give(pooled);
        return [{ message: encodeDoneChunk(handle) }];
      },
      (error: unknown) => [{ message: this.errorReply(request, wireError(error), 'reading from file failed') }],
    );
  }

  /** A read with holes: zero runs go as holes, the rest as data, each run its own chunk; a failed status ends the reply with an error. */
  private async sparseReadReplies(request: Request, { node }: BlockExport, runs: StatusRun[], statusFailed: boolean): Promise<ReadReply[]> {
    const end = request.offset + request.length;
    const reads = runs.map((run) => {
      const pooled = run.zero ? null : this.buffers.take(DATA_HEAD_ROOM + run.length);
      return { pooled, done: pooled && node.readInto(run.offset, pooled.subarray(DATA_HEAD_ROOM)) };
    });
    const results = await Promise.allSettled(reads.map((read) => read.done));
    const replies: ReadReply[] = [];
    for (const [index, { offset, length }] of runs.entries()) {
      const result = results[index]!;
      if (result.status === 'rejected') return [...replies, { message: this.errorReply(request, wireError(result.reason), 'reading from file failed') }];
      const { pooled } = reads[index]!;
      const final = offset + length === end;
      replies.push(pooled ? { message: dataChunkAround(pooled, request.handle, final, offset), pooled } : { message: encodeHoleChunk(request.handle, final, offset, length) });
    }
    if (statusFailed) replies.push({ message: this.errorReply(request, NbdError.EIO, 'reading from file failed') });
    return replies;
  }

  private handleBlockStatus(request: Request): Promise<void> | undefined {
    if (!request.length) return this.sendError(request, NbdError.EINVAL, 'need non-zero length');
    if (this.contexts.length === 0) return this.sendError(request, NbdError.EINVAL, 'CMD_BLOCK_STATUS not negotiated');
    return this.sendStatusChunks(request, request.flags & CommandFlag.REQ_ONE ? 1 : MAX_BLOCK_STATUS_EXTENTS, 0);
  }

  /** One chunk per context from `first` on; a context is asked only once the chunk before it has been let out. */
  private sendStatusChunks(request: Request, limit: number, first: number): Promise<void> | undefined {
    const last = this.contexts.length - 1;
    for (let index = first; index <= last; index++) {
      const context = this.contexts[index]!;
      let extents;
      try {
        extents = context.extents(request.offset, request.length, limit);
      } catch {
        return this.sendError(request, NbdError.EIO, "can't get block status");
      }
      const draining = this.send(encodeBlockStatusChunk(request.handle, index === last, context.id, extents));
      if (draining) return index === last ? draining : draining.then(() => this.sendStatusChunks(request, limit, index + 1));
    }
    return undefined;
  }

  /**
   * Runs an operation whose reply carries no data: success, or the error QEMU names.
   * A request through a throttle node is answered when QEMU's would be (block/throttle/completion.ts).
   */
  private reply(request: Request, failureText: string, operation: () => void): Promise<void> | undefined {
    return answerWhenDue(operation, (failure) =>
      failure === null ? this.send(encodeSimpleReply(request.handle, 0)) : this.sendError(request, wireError(failure), failureText),
    );
  }

  private sendError(request: Request, error: number, message: string): Promise<void> | undefined {
    return this.send(this.errorReply(request, error, message));
  }

  private errorReply(request: Request, error: number, message: string): Buffer {
    return this.structured ? encodeErrorChunk(request.handle, error, message) : encodeSimpleReply(request.handle, error);
  }

  /**
   * Writes one reply. The next request is read at once unless more than
   * PENDING_OUTPUT bytes wait to be sent: then the connection waits for them
   * to drain, so a client that does not read holds at most that plus one
   * reply. Returns a promise only when there is something to wait for (output
   * to drain) or the connection has gone (rejected).
   */
  private send(reply: Buffer, written?: () => void): Promise<void> | undefined {
    if (this.socket.destroyed) return Promise.reject(new ConnectionEnded(false));
    this.socket.write(reply, written);
    return this.drained();
  }

  private drained(): Promise<void> | undefined {
    if (this.socket.writableLength <= PENDING_OUTPUT) return undefined;
    return new Promise((resolve, reject) => {
      const onDrain = () => {
        this.socket.off('close', onClose);
        resolve();
      };
      const onClose = () => {
        this.socket.off('drain', onDrain);
        reject(new ConnectionEnded(false));
      };
      this.socket.once('drain', onDrain);
      this.socket.once('close', onClose);
    });
  }
}

/** A failed request's error on the wire: a block I/O error's errno as QEMU's server maps it; any other failure is EIO. */
function wireError(failure: unknown): number {
  return failure instanceof BlockIoError ? wireErrorForErrno(failure.errno) : NbdError.EIO;
}

/** What a meta context query selects, by QEMU's rules: empty parts list everything only when listing. */
function matchingContexts(available: MetaContext[], query: string, listing: boolean): MetaContext[] {
  const matches = (name: string, prefix: string): boolean => {
    if (!query.startsWith(prefix)) return false;
    return query === prefix ? listing : query === name;
  };
  const selected: MetaContext[] = [];
  for (const context of available) {
    if (context.name === 'base:allocation') {
      if (matches(context.name, 'base:')) selected.push(context);
    } else if (context.name === 'qemu:allocation-depth') {
      if (query === context.name || (listing && query === 'qemu:')) selected.push(context);
    } else if (query === context.name || (listing && (query === 'qemu:' || query === 'qemu:dirty-bitmap:'))) {
      selected.push(context);
    }
  }
  return selected;
}

/** Names longer than 80 bytes are cut in error replies, as QEMU cuts them. */
function sanitizedName(name: Buffer): string {
  const text = name.toString('utf8');
  return name.length < 80 ? text : `${name.subarray(0, 80).toString('utf8')}...`;
}
