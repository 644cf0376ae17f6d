import { loadConfig } from './config/index.ts';
import { Daemon } from './daemon.ts';
import { createLogger } from './log.ts';

/** The commands clients send first; each must succeed. */
const REHEARSAL = [
  { execute: 'qmp_capabilities' },
  { execute: 'blockdev-add', arguments: { driver: 'null-co', 'node-name': 'n0', size: 2 ** 40 } },
  { execute: 'block-dirty-bitmap-add', arguments: { node: 'n0', name: 'a' } },
  { execute: 'block-dirty-bitmap-add', arguments: { node: 'n0', name: 'b', disabled: true } },
  { execute: 'human-monitor-command', arguments: { 'command-line': 'qemu-io n0 "write -z 0 64M"' } },
  { execute: 'block-dirty-bitmap-merge', arguments: { node: 'n0', target: 'b', bitmaps: ['a'] } },
  { execute: 'x-debug-block-dirty-bitmap-sha256', arguments: { node: 'n0', name: 'b' } },
  { execute: 'transaction', arguments: { actions: [{ type: 'block-dirty-bitmap-clear', data: { node: 'n0', name: 'b' } }] } },
  { execute: 'block-dirty-bitmap-clear', arguments: { node: 'n0', name: 'a' } },
  { execute: 'block-dirty-bitmap-disable', arguments: { node: 'n0', name: 'a' } },
  { execute: 'query-named-block-nodes' },
  { execute: 'query-block' },
  { execute: 'query-version' },
  { execute: 'block-dirty-bitmap-remove', arguments: { node: 'n0', name: 'a' } },
];

/**
 * Runs a throwaway daemon (no monitor, no log, no qemu-io output) through the commands clients send
 * first, so that bin/qblockd's code cache holds their compiled code and a real
 * daemon's first command runs about as fast as its next. Rejects if any fails.
 */
export async function rehearse(): Promise<void> {
  const daemon = new Daemon(loadConfig(undefined), createLogger({ level: 'silent', destination: 'stderr' }), { stdout: () => {}, stderr: () => {} });
  const replies: string[] = [];
  let answered = () => {};
  const done = new Promise<void>((resolve) => (answered = resolve));
  const session = daemon.openSession(
    {
      send(messages) {
        for (const parts of messages) replies.push(parts.join(''));
        if (replies.length === REHEARSAL.length + 1) answered();
      },
      pendingBytes: () => 0,
      drained: async () => {},
      close() {},
      abort() {},
    },
    { pretty: false },
    'unix',
  );
  session.receive(Buffer.from(REHEARSAL.map((request) => JSON.stringify(request) + '\n').join('')));
  await done;
  const failed = replies.slice(1).find((reply) => !reply.startsWith('{"return"'));
  if (failed) throw new Error(`rehearsal failed: ${failed}`);
}
