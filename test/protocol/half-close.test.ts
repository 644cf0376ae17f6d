import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonProcess, exchangeUntilClose } from '../support/daemon.ts';

// A client that sends its requests and shuts down its sending side (`socat`, `nc -N`, a
// script piping a file) still gets every reply, as from QEMU 7.2.22, which answered this
// input with exactly these lines before closing; the unfinished last value gets none.
describe('a client that half-closes its socket', () => {
  let daemon: DaemonProcess;
  beforeAll(async () => {
    daemon = await DaemonProcess.start(['-blockdev', 'driver=null-co,node-name=n0']);
  });
  afterAll(async () => daemon.stop());

  it('is answered for every request it sent, including ones that complete later, then closed', async () => {
    const input = [
      '{"execute": "qmp_capabilities"}',
      // A host name is resolved off the main thread: its reply comes after the end of input.
      '{"execute": "nbd-server-start", "arguments": {"addr": {"type": "inet", "data": {"host": "localhost", "port": "0"}}}}',
      '{"execute": "block-export-add", "arguments": {"type": "nbd", "id": "e0", "node-name": "n0"}, "id": 1}',
      '{"execute": "query-block-exports"}',
      '{"execute": "nbd-server-stop"}',
      '{"execute": "query-block-exports", "arguments": {',
    ].join('\n');
    const lines = await exchangeUntilClose(daemon.socketPath, input, 10_000);
    const withoutTimestamps = lines?.slice(1).map((line) => line.replace(/"seconds": \d+, "microseconds": \d+/, '"seconds": S, "microseconds": U'));
    expect(withoutTimestamps).toEqual([
      '{"return": {}}',
      '{"return": {}}',
      '{"return": {}, "id": 1}',
      '{"return": [{"node-name": "n0", "shutting-down": false, "type": "nbd", "id": "e0"}]}',
      '{"timestamp": {"seconds": S, "microseconds": U}, "event": "BLOCK_EXPORT_DELETED", "data": {"id": "e0"}}',
      '{"return": {}}',
    ]);
  });
});
