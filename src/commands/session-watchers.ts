import type { QmpSession } from '../qmp/session.ts';
import type { SessionView } from '../qmp/dispatcher.ts';
import type { XQblockdClientInfo, XQblockdTransport } from '../schema/generated/qapi-types.ts';
import { ChangeWatch, type WatchedState } from './change-watch.ts';
import type { SchemaView } from '../schema/index.ts';
import type { Watchers } from './services.ts';

/** At most one notification per bitmap per this many milliseconds, however fast it changes. */
const NOTIFY_INTERVAL_MS = 50;

/**
 * The connected clients, and which of them asked for qblockd's change
 * notifications: only those get X_QBLOCKD_* events, so ordinary QMP clients
 * see exactly QEMU's events.
 */
export class SessionWatchers implements Watchers {
  private readonly clientsBySession = new Map<SessionView, { session: QmpSession; transport: XQblockdTransport; watching: boolean }>();
  private changeWatch: ChangeWatch | null = null;

  constructor(
    private readonly watchedState: () => WatchedState,
    private readonly makeEvent: (name: string, data?: Record<string, unknown>) => unknown,
    private readonly changingUnprompted: () => boolean,
  ) {}

  opened(session: QmpSession, transport: XQblockdTransport): void {
    this.clientsBySession.set(session, { session, transport, watching: false });
    this.poke();
  }

  closed(session: QmpSession): void {
    this.clientsBySession.delete(session);
    if (![...this.clientsBySession.values()].some((client) => client.watching)) {
      this.changeWatch?.stop();
      this.changeWatch = null;
    }
    this.poke();
  }

  watch(view: SessionView): void {
    const client = this.clientsBySession.get(view);
    if (!client) return;
    client.watching = true;
    this.changeWatch ??= new ChangeWatch(this.watchedState, {
      graphChanged: () => this.notify('X_QBLOCKD_GRAPH_CHANGED'),
      bitmapChanged: (node, name, count) => this.notify('X_QBLOCKD_BITMAP_CHANGED', { node, name, count }),
    }, NOTIFY_INTERVAL_MS, this.changingUnprompted);
  }

  schemaView(view: SessionView): SchemaView {
    return this.clientsBySession.get(view)?.watching ? 'with-qblockd' : 'qemu';
  }

  clients(): XQblockdClientInfo[] {
    return [...this.clientsBySession.entries()].map(([view, client]) => ({
      id: view.id,
      transport: client.transport,
      watching: client.watching,
    }));
  }

  /** A command ran or an event went out: the state may have changed. */
  poke(): void {
    this.changeWatch?.poke();
  }

  stop(): void {
    this.changeWatch?.stop();
  }

  private notify(name: string, data?: Record<string, unknown>): void {
    const event = this.makeEvent(name, data);
    for (const client of this.clientsBySession.values()) if (client.watching) client.session.emitEvent(event);
  }
}
