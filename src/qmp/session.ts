import { JsonStream } from './json-stream.ts';
import { toQmpJsonParts } from './wire.ts';
import type { Dispatcher, SessionView } from './dispatcher.ts';

/** One serialised message (without line terminator), in pieces to be sent one after the other. */
export type OutgoingMessage = readonly string[];

/** The byte pipe under a session: a Unix socket, a WebSocket, a test double. */
export interface SessionTransport {
  /** Sends serialised messages, in order, each framed as the transport frames one message. */
  send(messages: readonly OutgoingMessage[]): void;
  /** Bytes handed to send() that the peer has not taken yet. */
  pendingBytes(): number;
  /** Resolves when pendingBytes() has fallen low again, or the peer is gone. */
  drained(): Promise<void>;
  /** Closes after the bytes already sent. */
  close(): void;
  /** Drops the connection and whatever it still had to send. */
  abort(): void;
}

export interface SessionLimits {
  /** Stop serving a client's requests while this many output bytes wait for it to read them. */
  maxPendingReplyBytes: number;
  /** Stop reading from a client while this many of its bytes wait to be parsed. */
  maxPendingInputBytes: number;
  /** Disconnect a client that leaves this many bytes of events (and replies) unread. */
  maxUnreadOutputBytes: number;
}

/** Lets a session stop its transport from reading while it is behind. */
export interface InputFlowControl {
  pause(): void;
  resume(): void;
}

/** Output waits in the session (compactly) rather than in the transport once this much is unread. */
const TRANSPORT_BACKLOG_BYTES = 64 << 10;

/** Requests one session serves before letting the event loop take a turn. */
const REQUESTS_PER_TURN = 64;

let nextSessionId = 1;

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/**
 * One QMP client: its negotiation state, its input stream and its output.
 * Requests are parsed and run one at a time, in order, as QEMU's monitor runs
 * them; input waits as raw bytes (and the transport stops reading) while the
 * client is behind, and unread output is bounded.
 */
export class QmpSession implements SessionView {
  readonly id = nextSessionId++;
  negotiated = false;
  oobEnabled = false;
  /** Set when the session was dropped for leaving too much output unread. */
  overflowed = false;
  flowControl?: InputFlowControl;
  private readonly input = new JsonStream();
  private running = false;
  private closed = false;
  private inputPaused = false;
  private inputEnded = false;
  private backlog: OutgoingMessage[] = [];
  private backlogBytes = 0;
  private flushing = false;

  constructor(
    private readonly transport: SessionTransport,
    private readonly dispatcher: Dispatcher,
    private readonly limits: SessionLimits,
    greeting: unknown,
    private readonly pretty = false,
  ) {
    this.send(greeting);
  }

  /**
   * Bytes from the client. Every transport delivers one JSON stream: a value may
   * span chunks (or WebSocket frames), and one chunk may hold several values.
   */
  receive(chunk: Buffer): void {
    if (this.closed) return;
    this.input.push(chunk);
    if (!this.inputPaused && this.flowControl && this.input.unreadBytes > this.limits.maxPendingInputBytes) {
      this.inputPaused = true;
      this.flowControl.pause();
    }
    // A failure inside one client's session ends that client, never the daemon.
    if (!this.running) this.serve().catch(() => this.drop());
  }

  private drop(): void {
    this.close();
    this.transport.abort();
  }

  /**
   * The client sends nothing more (it half-closed its socket). As QEMU does, every
   * request it sent is still answered; then the connection closes.
   */
  endOfInput(): void {
    if (this.closed || this.inputEnded) return;
    this.inputEnded = true;
    if (!this.running) void this.closeGracefully();
  }

  /** Events reach only clients that finished negotiation, as in QEMU. */
  emitEvent(event: unknown): void {
    if (!this.negotiated || this.closed) return;
    if (this.backlogBytes > this.limits.maxUnreadOutputBytes) {
      this.overflowed = true;
      this.drop();
      return;
    }
    this.send(event);
  }

  close(): void {
    this.closed = true;
    this.backlog = [];
    this.backlogBytes = 0;
  }

  /** Lets the replies already sent reach the client, then closes. */
  async closeGracefully(): Promise<void> {
    while (this.backlog.length > 0 && !this.closed) await this.flushBacklog();
    this.closed = true;
    if (this.transport.pendingBytes() > 0) await this.transport.drained();
    this.transport.close();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private get unreadOutputBytes(): number {
    return this.transport.pendingBytes() + this.backlogBytes;
  }

  private async serve(): Promise<void> {
    this.running = true;
    try {
      for (let served = 1; !this.closed; served++) {
        if (this.unreadOutputBytes > this.limits.maxPendingReplyBytes) {
          await this.outputDrained();
          continue;
        }
        // Requests resolve in microtasks; a long pipelined batch lets the event loop
        // run now and then, so replies flow out and other clients are served meanwhile.
        if (served % REQUESTS_PER_TURN === 0) await nextTurn();
        // QEMU's monitor moves its dispatcher to the main loop's context and back around
        // every command (two turns of the main loop): a running job's steps and its exit
        // come between pipelined requests.
        if (served > 1 && this.dispatcher.backgroundWorkPending()) {
          await nextTurn();
          await nextTurn();
        }
        const item = this.input.next();
        this.resumeInputIfCaughtUp();
        if (item === undefined) break;
        const reply =
          item.kind === 'error'
            ? { error: { class: 'GenericError', desc: item.message } }
            : await this.dispatcher.dispatch(item.value, this);
        this.send(reply);
      }
    } finally {
      this.running = false;
      if (this.inputEnded && !this.closed) void this.closeGracefully();
    }
  }

  private resumeInputIfCaughtUp(): void {
    if (this.inputPaused && !this.closed && this.input.unreadBytes <= this.limits.maxPendingInputBytes) {
      this.inputPaused = false;
      this.flowControl?.resume();
    }
  }

  private send(message: unknown): void {
    if (this.closed) return;
    const parts = toQmpJsonParts(message, this.pretty);
    if (this.backlog.length === 0 && this.transport.pendingBytes() <= TRANSPORT_BACKLOG_BYTES) {
      this.transport.send([parts]);
      return;
    }
    const length = parts.reduce((sum, part) => sum + part.length, 0);
    // A small message waits as one string: far less per event than its pieces would cost.
    this.backlog.push(length < 4096 ? [parts.join('')] : parts);
    this.backlogBytes += length;
    if (!this.flushing) {
      this.flushBacklog().catch(() => this.drop());
    }
  }

  /** Hands the waiting output to the transport once it has room, all at once. */
  private async flushBacklog(): Promise<void> {
    this.flushing = true;
    try {
      while (this.backlog.length > 0 && !this.closed) {
        if (this.transport.pendingBytes() > TRANSPORT_BACKLOG_BYTES) {
          await this.transport.drained();
          continue;
        }
        const messages = this.backlog;
        this.backlog = [];
        this.backlogBytes = 0;
        this.transport.send(messages);
      }
    } finally {
      this.flushing = false;
    }
  }

  private async outputDrained(): Promise<void> {
    if (this.transport.pendingBytes() > TRANSPORT_BACKLOG_BYTES) await this.transport.drained();
    else await this.flushBacklog();
  }
}
