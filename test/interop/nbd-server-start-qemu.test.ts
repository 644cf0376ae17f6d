import path from 'node:path';
import { expect, it } from 'vitest';
import { DaemonProcess } from '../support/daemon.ts';
import { describeInterop } from '../support/qemu.ts';

/** nbd-server-start's answers to security options and odd addresses, asked of QEMU 7.2 and qblockd alike. */
describeInterop('nbd-server-start against QEMU 7.2', { qemuSystem: true }, () => {
  it('gives the same reply to each address and tls-creds', async () => {
    const transcripts: unknown[][] = [];
    for (const program of ['qemu-system-x86_64', undefined]) {
      const daemon = await DaemonProcess.start([], { program });
      const qmp = await daemon.client();
      const out: unknown[] = [];
      const inet = (port: string) => ({ type: 'inet', data: { host: '127.0.0.1', port } });
      const attempts: Array<Record<string, unknown>> = [
        { addr: { type: 'unix', data: { path: path.join(daemon.dir, 'tls.sock') } }, 'tls-creds': 'x' },
        { addr: inet('0'), 'tls-creds': 'x', 'tls-authz': 'y' },
        { addr: inet('x') },
        { addr: inet('-1') },
        { addr: inet('0x10') },
        { addr: inet('65536') },
        { addr: inet('') },
        { addr: inet('+0') },
        { addr: { type: 'inet', data: { host: 'nosuchhost.invalid', port: '1' } } },
        // Longer than a host name can be (libuv refuses it with EINVAL before the resolver).
        { addr: { type: 'inet', data: { host: 'a'.repeat(300), port: '0' } } },
        { addr: { type: 'unix', data: { path: path.join(daemon.dir, 'no', 'such', 'dir.sock') } } },
        { addr: inet('0'), 'max-connections': 2 },
        // The ipv4/ipv6 flags choose the address family getaddrinfo resolves; both off is refused first.
        { addr: { type: 'inet', data: { host: 'localhost', port: '0', ipv4: false, ipv6: false } }, 'tls-creds': 'x' },
        { addr: { type: 'inet', data: { host: '127.0.0.1', port: '0', ipv4: false } } },
        { addr: { type: 'inet', data: { host: '::1', port: '0', ipv6: false } } },
        { addr: { type: 'inet', data: { host: '', port: '0', ipv4: false } } },
        { addr: { type: 'inet', data: { host: 'localhost', port: '0', ipv6: false } } },
        { addr: { type: 'inet', data: { host: 'localhost', port: '0', ipv4: true, ipv6: true } } },
        { addr: { type: 'inet', data: { host: 'localhost', port: '0', numeric: true } } },
        { addr: { type: 'inet', data: { host: '127.0.0.1', port: 'http', numeric: true } } },
        // The port is cut to 32 bytes (here to 32 zeros, port 0; there inside a multibyte character).
        { addr: inet(`${'0'.repeat(36)}80`) },
        { addr: inet('\u20ac'.repeat(40)) },
      ];
      for (const args of attempts) {
        out.push(await qmp.command({ execute: 'nbd-server-start', arguments: args }));
        out.push(await qmp.command({ execute: 'nbd-server-stop' }));
      }
      transcripts.push(out.map((reply) => JSON.parse(JSON.stringify(reply).replaceAll(daemon.dir, 'DIR'))));
      qmp.close();
      await daemon.stop();
    }
    expect(transcripts[1]).toEqual(transcripts[0]);
  });
});
