import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonProcess, type RawClient } from '../support/daemon.ts';
import { buildImage } from '../support/qcow2-images.ts';

// Replies of QEMU 7.2.22 (qemu-system-x86_64 -M none) with the same nodes: a qcow2 node takes no
// writer beside itself on its file node, so qemu-io may read the file node but not write to it.
// qemu-io counts a command's words before it asks for the write permission.
describe('qemu-io on the file node under a qcow2 node', () => {
  let daemon: DaemonProcess;
  let client: RawClient;
  let dir: string;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-qemu-io-'));
    fs.writeFileSync(path.join(dir, 'disk.qcow2'), buildImage());
    fs.writeFileSync(path.join(dir, 'raw.img'), Buffer.alloc(1 << 20));
    daemon = await DaemonProcess.start([
      '-blockdev', `driver=file,node-name=f1,filename=${dir}/disk.qcow2`, '-blockdev', 'driver=qcow2,node-name=q1,file=f1',
      '-blockdev', `driver=file,node-name=f2,filename=${dir}/raw.img`, '-blockdev', 'driver=raw,node-name=r2,file=f2',
      '-blockdev', `driver=file,node-name=f3,filename=${dir}/raw.img,read-only=on`,
    ]);
    client = await daemon.client();
  });
  afterAll(async () => {
    client.close();
    await daemon.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const conflict =
    "Permission conflict on node 'f1': permissions 'write' are both required by an unnamed block device (uses node 'f1' as 'root' child) and unshared by node 'q1' (uses node 'f1' as 'file' child).\r\n";
  it.each([
    ['qemu-io f1 "write 0 64k"', conflict],
    ['qemu-io f1 "discard 0 64k"', conflict],
    ['qemu-io f1 "write -z 0 64k"', conflict],
    ['qemu-io f1 "aio_write 0 512"', conflict],
    ['qemu-io f1 "write -z 0"', conflict],
    ['qemu-io f1 "write a b"', conflict],
    ['qemu-io f1 "write"', ''],
    ['qemu-io f1 "write 1"', ''],
    ['qemu-io f1 "discard 0"', ''],
    ['qemu-io f1 "read 0 64k"', ''],
    ['qemu-io f1 "flush"', ''],
    ['qemu-io q1 "write 0 64k"', ''],
    ['qemu-io f2 "write 0 64k"', ''],
    ['qemu-io r2 "write 0 64k"', ''],
    ['qemu-io f3 "write"', ''],
    ['qemu-io f3 "write 0"', ''],
    ['qemu-io f3 "write -z 0"', 'Block node is read-only\r\n'],
    ['qemu-io f3 "write a b"', 'Block node is read-only\r\n'],
  ])('%s', async (line, reply) => {
    expect(await client.command({ execute: 'human-monitor-command', arguments: { 'command-line': line } })).toEqual({ return: reply });
  });
});
