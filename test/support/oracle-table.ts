import { DaemonProcess } from './daemon.ts';

/**
 * Replies recorded from QEMU 7.2 and pinned: the same requests run on
 * qblockd (always) and on QEMU itself (interop, when installed), and each
 * reply line must equal the recorded one byte for byte.
 */
export interface RecordedExchange {
  /** The request as sent, kept as text: its integers may exceed a double's precision. */
  request: string;
  /** The reply line QEMU 7.2 sent, exactly. */
  reply: string;
}

/** Sends each request on one monitor of a fresh daemon and returns the reply lines (events skipped). */
export async function replyLines(requests: string[], options: { program?: string; args?: string[] } = {}): Promise<string[]> {
  const daemon = await DaemonProcess.start(options.args ?? [], { program: options.program });
  try {
    const client = await daemon.client();
    const lines: string[] = [];
    for (const request of requests) {
      client.send(request + '\n');
      for (;;) {
        // QEMU's qemu-io fills a buffer as large as the request: 2 GiB writes take seconds.
        const line = await client.readLine(60_000);
        if (!line.startsWith('{"timestamp"') && !line.startsWith('{"event"')) {
          lines.push(line);
          break;
        }
      }
    }
    client.close();
    return lines;
  } finally {
    await daemon.stop();
  }
}

