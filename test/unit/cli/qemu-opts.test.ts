import { describe, expect, it } from 'vitest';
import { parseQemuOpts } from '../../../src/cli/qemu-opts.ts';

describe('QemuOpts syntax', () => {
  it('keeps keys flat, with the implied first value and ,, escaping', () => {
    expect(parseQemuOpts('socket,id=c0,path=/tmp/a,,b.sock,server=on,wait=off', 'backend')).toEqual({
      backend: 'socket',
      id: 'c0',
      path: '/tmp/a,b.sock',
      server: 'on',
      wait: 'off',
    });
    expect(parseQemuOpts('/tmp/a,,b.sock,server=on', 'path')).toEqual({ path: '/tmp/a,b.sock', server: 'on' });
    expect(parseQemuOpts('if=none,id=d0,file.filename=x')).toEqual({ if: 'none', id: 'd0', 'file.filename': 'x' });
  });

  it('reads short-form booleans: server is server=on, nowait is wait=off', () => {
    expect(parseQemuOpts('/tmp/x.sock,server,nowait', 'path')).toEqual({ path: '/tmp/x.sock', server: 'on', wait: 'off' });
  });

  it('keeps the last value of a repeated key', () => {
    expect(parseQemuOpts('id=a,id=b')).toEqual({ id: 'b' });
  });
});
