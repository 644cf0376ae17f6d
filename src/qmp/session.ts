import { JsonStream, type StreamItem } from './json-stream.ts';
import { toQmpJson } from './wire.ts';
import type { Dispatcher, SessionView } from './dispatcher.ts';

/** The byte pipe under a session: a Unix socket, a WebSocket, a test double. */
export interface SessionTransport {
  /** Sends one serialised message (without line terminator). */
  send(message: string): void;
  /** Bytes handed to send() that the peer has not taken yet. */
  pendingBytes(): number;
  /** Resolves when pendingBytes() has fallen low again. */
  drained(): Promise<void>;
  close(): void;
}

export interface SessionLimits {
  /** Stop serving a client while this many reply bytes wait for it to read them. */
  maxPendingReplyBytes: number;
  /** Ask the transport to stop reading once this many requests are queued. */
  maxQueuedRequests: number;
}

/** Lets a session stop its transport from reading while it is behind. */
export interface InputFlowControl {
  pause(): void;
  resume(): void;
}

let nextSessionId = 1;

/**
 * One QMP client: its negotiation state, its input framing and its strictly
 * ordered request queue. Requests run one at a time, as QEMU's monitor runs them.
 */
export class QmpSession implements SessionView {
  readonly id = nextSessionId++;
  negotiated = false;
  oobEnabled = false;
  private readonly input = new JsonStream();
  private readonly queue: StreamItem[] = [];
  private running = false;
  private closed = false;
  private inputPaused = false;
  private inputEnded = false;
  flowControl?: InputFlowControl;

  constructor(
    private readonly transport: SessionTransport,
    private readonly dispatcher: Dispatcher,
    private readonly limits: SessionLimits,
    greeting: unknown,
  ) {
    this.transport.send(toQmpJson(greeting));
  }

  /** Raw bytes from the client. */
  receive(chunk: Buffer): void {
    if (this.closed) return;
    this.enqueue(this.input.push(chunk));
  }

  /** A transport with its own framing (one message per WebSocket frame). */
  receiveMessage(message: Buffer): void {
    if (this.closed) return;
    this.enqueue([...this.input.push(message), ...this.input.end()]);
  }

  /**
   * The client sends nothing more (it half-closed its socket). As QEMU does, every
   * request it sent is still answered; then the connection closes.
   */
  endOfInput(): void {
    if (this.closed || this.inputEnded) return;
    this.inputEnded = true;
    this.enqueue(this.input.end());
    if (!this.running) void this.closeGracefully();
  }

  /** Events reach only clients that finished negotiation, as in QEMU. */
  emitEvent(event: unknown): void {
    if (this.negotiated && !this.closed) this.transport.send(toQmpJson(event));
  }

  close(): void {
    this.closed = true;
    this.queue.length = 0;
  }

  /** Lets the replies already sent reach the client, then closes. */
  async closeGracefully(): Promise<void> {
    this.closed = true;
    this.queue.length = 0;
    if (this.transport.pendingBytes() > 0) await this.transport.drained();
    this.transport.close();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private enqueue(items: StreamItem[]): void {
    if (items.length === 0) return;
    this.queue.push(...items);
    if (this.queue.length >= this.limits.maxQueuedRequests && !this.inputPaused && this.flowControl) {
      this.inputPaused = true;
      this.flowControl.pause();
    }
    if (!this.running) void this.drainQueue();
  }

  private async drainQueue(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        if (this.transport.pendingBytes() > this.limits.maxPendingReplyBytes) {
          await this.transport.drained();
          continue;
        }
        const item = this.queue.shift()!;
        const reply =
          item.kind === 'error'
            ? { error: { class: 'GenericError', desc: item.message } }
            : await this.dispatcher.dispatch(item.value, this);
        if (!this.closed) this.transport.send(toQmpJson(reply));
      }
    } finally {
      this.running = false;
      if (this.inputPaused && !this.closed) {
        this.inputPaused = false;
        this.flowControl?.resume();
      }
      if (this.inputEnded && !this.closed) void this.closeGracefully();
    }
  }
}
