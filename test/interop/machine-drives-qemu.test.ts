import { afterEach, expect, it } from 'vitest';
import { DaemonProcess } from '../support/daemon.ts';
import { describeInterop } from '../support/qemu.ts';

/** Node names QEMU generates (#blockNNN) differ from run to run; everything else must be byte for byte QEMU's. */
const masked = (text: string) => text.replace(/#block\d+/g, '#blockNNN');

/**
 * query-block, info block and qom-get on launch lines without -nodefaults (the machine's default
 * drives), with -device properties, asked of qblockd and of QEMU 7.2 side by side.
 */
describeInterop('default drives and device properties against QEMU 7.2', { qemuSystem: true }, () => {
  const started: DaemonProcess[] = [];
  afterEach(async () => {
    await Promise.all(started.splice(0).map((daemon) => daemon.stop()));
  });

  async function answers(program: string | undefined, args: string[], requests: Array<Record<string, unknown>>): Promise<string[]> {
    const daemon = await DaemonProcess.start(args, { program, baseArgs: ['-display', 'none', '-S'] });
    started.push(daemon);
    const client = await daemon.client();
    const replies: string[] = [];
    for (const request of requests) replies.push(masked(await client.exchange(JSON.stringify(request) + '\n')));
    client.close();
    return replies;
  }

  const LINES: Array<{ args: string[]; requests: Array<Record<string, unknown>> }> = [
    { args: ['-M', 'pc'], requests: [{ execute: 'query-block' }] },
    { args: ['-M', 'q35', '-vga', 'none', '-serial', 'none'], requests: [{ execute: 'query-block' }] },
    {
      args: ['-M', 'pc', '-drive', 'if=floppy,driver=null-co,size=1474560', '-drive', 'if=ide,media=cdrom', '-blockdev', 'null-co,node-name=n0',
        '-device', 'virtio-blk-pci,drive=n0,id=v0,serial=s1,bootindex=2,write-cache=off'],
      requests: [
        { execute: 'query-block' },
        { execute: 'human-monitor-command', arguments: { 'command-line': 'info block' } },
        { execute: 'qom-get', arguments: { path: 'v0', property: 'serial' } },
        { execute: 'qom-get', arguments: { path: 'v0', property: 'bootindex' } },
        { execute: 'qom-get', arguments: { path: '/machine/unattached/device[16]', property: 'drive' } },
        { execute: 'block-dirty-bitmap-add', arguments: { node: 'ide1-cd0', name: 'b0' } },
        { execute: 'human-monitor-command', arguments: { 'command-line': 'qemu-io sd0 "read 0 512"' } },
      ],
    },
  ];

  it.each(LINES.map((line) => [line.args.join(' '), line] as const))('%s', async (_name, { args, requests }) => {
    const mine = await answers(undefined, args, requests);
    const theirs = await answers('qemu-system-x86_64', args, requests);
    expect(mine).toEqual(theirs);
  });
});
