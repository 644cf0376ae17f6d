import type { QmpSession, SessionTransport } from '../qmp/session.ts';

/** How a monitor presents its output. */
export interface MonitorOptions {
  pretty: boolean;
}

/** What a transport needs from the daemon: sessions opened and closed. */
export interface SessionHost {
  openSession(transport: SessionTransport, options: MonitorOptions): QmpSession;
  closeSession(session: QmpSession): void;
}
