import pino, { type Logger } from 'pino';

export interface LogConfig {
  level: string;
  /** "stderr" or a file path. */
  destination: string;
}

export type { Logger };

/** JSON lines to stderr by default; synchronous so nothing is lost on exit. */
export function createLogger(config: LogConfig): Logger {
  const destination =
    config.destination === 'stderr'
      ? pino.destination({ fd: 2, sync: true })
      : pino.destination({ dest: config.destination, mkdir: true, sync: true });
  return pino({ level: config.level, base: { name: 'qblockd' } }, destination);
}
