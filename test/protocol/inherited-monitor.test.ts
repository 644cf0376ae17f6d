import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { QBLOCKD } from '../support/daemon.ts';

/** Reads newline-terminated lines from a stream. */
function lineReader(stream: NodeJS.ReadableStream) {
  let buffered = '';
  const waiting: Array<() => void> = [];
  stream.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    waiting.splice(0).forEach((wake) => wake());
  });
  return async (): Promise<string> => {
    while (!buffered.includes('\n')) await new Promise<void>((resolve) => waiting.push(resolve));
    const end = buffered.indexOf('\n');
    const line = buffered.slice(0, end).replace(/\r$/, '');
    buffered = buffered.slice(end + 1);
    return line;
  };
}

describe("QEMU's Python harness launch line over real sockets", () => {
  it('serves QMP on an inherited socketpair end, answers qtest, and prints only what QEMU would', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qblockd-harness-'));
    const qtestPath = path.join(dir, 'qtest.sock');
    const qtestServer = net.createServer().listen(qtestPath);
    await new Promise((resolve) => qtestServer.once('listening', resolve));
    const qtestConnection = new Promise<net.Socket>((resolve) => qtestServer.once('connection', resolve));
    // Node's extra stdio pipes are Unix socketpairs: fd 3 in the child is one end.
    const child = spawn(
      QBLOCKD,
      ['-display', 'none', '-vga', 'none', '-chardev', 'socket,id=mon,fd=3', '-mon', 'chardev=mon,mode=control',
        '-qtest', `unix:path=${qtestPath}`, '-accel', 'qtest', '-nodefaults', '-display', 'none', '-accel', 'qtest',
        '-blockdev', 'null-co,node-name=n0', '-device', 'virtio-blk-pci,drive=n0,id=v0'],
      { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] },
    );
    const output: string[] = [];
    child.stdout!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    try {
      const monitor = child.stdio[3] as net.Socket;
      const readLine = lineReader(monitor);
      expect(JSON.parse(await readLine()).QMP.capabilities).toEqual(['oob']);
      monitor.write('{"execute": "qmp_capabilities"}\n');
      expect(await readLine()).toBe('{"return": {}}');
      const qtest = await qtestConnection;
      const readQtest = lineReader(qtest);
      qtest.write('clock_step 1000\n');
      expect(await readQtest()).toBe('OK 1000');
      monitor.write('{"execute": "qom-get", "arguments": {"path": "v0", "property": "drive"}}\n');
      expect(await readLine()).toBe('{"return": "n0"}');
      monitor.write('{"execute": "quit"}\n');
      const exit = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(exit).toBe(0);
      expect(output.join('').replace(/[0-9]+\.[0-9]{6}/g, 'T')).toBe('[I T] OPENED\n[R +T] clock_step 1000\n[S +T] OK 1000\n[I +T] CLOSED\n');
      qtest.destroy();
    } finally {
      child.kill('SIGKILL');
      qtestServer.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
