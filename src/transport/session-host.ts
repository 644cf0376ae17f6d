import type { QmpSession, SessionTransport } from '../qmp/session.ts';

/** What a transport needs from the daemon: sessions opened and closed. */
export interface SessionHost {
  openSession(transport: SessionTransport): QmpSession;
  closeSession(session: QmpSession): void;
}
