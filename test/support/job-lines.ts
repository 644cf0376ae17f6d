import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DaemonProcess } from './daemon.ts';
import { buildImage } from './qcow2-images.ts';

/**
 * A job-starting request and every line that followed it on the monitor, in
 * order (replies and events, timestamps as S/U, the private directory as
 * DIR), recorded from QEMU 7.2: until the job concluded, then query-jobs and
 * job-dismiss.
 */
export interface RecordedJobLines {
  request: string;
  lines: string[];
}

/**
 * The nodes every recording starts with: a null-co node, a qcow2 image over a
 * file node (so its file is locked and its node taken), a -drive device.
 */
function launchArgs(dir: string): string[] {
  return [
    '-blockdev', 'driver=null-co,node-name=n0,size=16777216',
    '-blockdev', `driver=file,node-name=f1,filename=${dir}/disk.qcow2`,
    '-blockdev', 'driver=qcow2,node-name=q1,file=f1',
    '-drive', 'if=none,id=d0,driver=null-co',
  ];
}

const TIMESTAMP = /"timestamp": \{"seconds": \d+, "microseconds": \d+\}/g;

/**
 * Runs each request (its job id is `j`) on one monitor of a fresh `program`
 * and returns what followed each: lines are read until the request's reply
 * and, when a job was made, its `concluded` event; then query-jobs and
 * job-dismiss of `j`, until their replies.
 */
export async function jobLines(requests: string[], program?: string): Promise<string[][]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-job-lines-'));
  fs.writeFileSync(path.join(dir, 'disk.qcow2'), buildImage({ virtualSize: 16 << 20 }));
  fs.writeFileSync(path.join(dir, 'raw.img'), Buffer.alloc(1 << 20));
  const daemon = await DaemonProcess.start(launchArgs(dir), { program });
  const normalise = (line: string) => line.replaceAll(dir, 'DIR').replace(TIMESTAMP, '"timestamp": {"seconds": S, "microseconds": U}');
  try {
    const client = await daemon.client();
    const readUntil = async (lines: string[], done: (line: string) => boolean) => {
      for (;;) {
        const line = await client.readLine(10_000);
        lines.push(normalise(line));
        if (done(line)) return line;
      }
    };
    const isReply = (line: string) => !line.startsWith('{"timestamp"');
    const all: string[][] = [];
    for (const request of requests) {
      const lines: string[] = [];
      client.send(request.replaceAll('DIR', dir) + '\n');
      let replied = false;
      let concluded = false;
      let failed = false;
      await readUntil(lines, (line) => {
        if (isReply(line)) {
          replied = true;
          failed = line.startsWith('{"error"');
        } else if (line.includes('"status": "concluded"')) concluded = true;
        return replied && (concluded || failed);
      });
      if (!failed) {
        client.send('{"execute": "query-jobs"}\n');
        await readUntil(lines, isReply);
        client.send('{"execute": "job-dismiss", "arguments": {"id": "j"}}\n');
        await readUntil(lines, isReply);
      }
      all.push(lines);
    }
    client.close();
    return all;
  } finally {
    await daemon.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
