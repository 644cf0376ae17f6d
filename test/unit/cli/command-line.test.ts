import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { CommandLineError, helpText, parseCommandLine, versionText } from '../../../src/cli/index.ts';

const listen = (path: string) => ({ endpoint: { kind: 'listen', path }, concurrentClients: false });
const failure = (argv: string[]): string => {
  try {
    parseCommandLine(argv);
  } catch (error) {
    expect(error).toBeInstanceOf(CommandLineError);
    return (error as Error).message;
  }
  throw new Error(`accepted: ${argv.join(' ')}`);
};

/** A socket this test process holds, standing for the one QEMU's harness passes down. */
const inheritedSocketFd = (() => {
  const server = net.createServer().listen(0).unref();
  return (server as unknown as { _handle: { fd: number } })._handle.fd;
})();

describe('parseCommandLine: accepted launch lines', () => {
  it('reads the qemu-system-x86_64 -M none form', () => {
    const cl = parseCommandLine([
      '-M', 'none', '-nodefaults', '-display', 'none', '-nographic', '-S',
      '-blockdev', 'driver=file,node-name=f0,filename=d.qcow2',
      '-blockdev', 'driver=qcow2,node-name=n0,file=f0',
      '-qmp', 'unix:/tmp/q.sock,server=on,wait=off',
    ]);
    expect(cl.monitors).toEqual([{ pretty: false, ...listen('/tmp/q.sock'), option: '-qmp unix:/tmp/q.sock,server=on,wait=off' }]);
    expect(cl.blockdevs.map((b) => [b.syntax, b.value])).toEqual([
      ['keyval', { driver: 'file', 'node-name': 'f0', filename: 'd.qcow2' }],
      ['keyval', { driver: 'qcow2', 'node-name': 'n0', file: 'f0' }],
    ]);
    expect(cl.blockdevs[0]!.option).toBe('-blockdev driver=file,node-name=f0,filename=d.qcow2');
    expect(cl.drives).toEqual([]);
    expect(cl.configFile).toBeUndefined();
    expect(cl.action).toBeUndefined();
  });

  it('reads the qemu-storage-daemon form, JSON blockdev and --opt=value', () => {
    const cl = parseCommandLine([
      '--blockdev', '{"driver": "null-co", "node-name": "n0", "size": 17592186044416}',
      '--blockdev=null-co,node-name=n1',
      '--chardev', 'socket,id=m0,path=/tmp/q.sock,server=on,wait=off',
      '--monitor', 'chardev=m0',
      '--chardev=socket,id=m1,path=/tmp/r.sock,server=on,wait=off',
      '--monitor=m1,mode=control,pretty=on,id=mon1',
      '--config=/etc/qblockd.json',
    ]);
    expect(cl.blockdevs[0]).toEqual({
      syntax: 'json',
      value: { driver: 'null-co', 'node-name': 'n0', size: 17592186044416 },
      option: '--blockdev {"driver": "null-co", "node-name": "n0", "size": 17592186044416}',
    });
    expect(cl.blockdevs[1]).toEqual({ syntax: 'keyval', value: { driver: 'null-co', 'node-name': 'n1' }, option: '--blockdev=null-co,node-name=n1' });
    expect(cl.monitors).toEqual([
      { id: 'm0', pretty: false, ...listen('/tmp/q.sock'), option: expect.stringMatching(/^--chardev/) },
      { id: 'mon1', pretty: true, ...listen('/tmp/r.sock'), option: '--chardev=socket,id=m1,path=/tmp/r.sock,server=on,wait=off' },
    ]);
    expect(cl.configFile).toBe('/etc/qblockd.json');
  });

  it('keeps monitors in command-line order across -qmp, -qmp-pretty, --monitor and -mon', () => {
    const cl = parseCommandLine([
      '-qmp', 'unix:/tmp/1.sock,server,nowait',
      '-chardev', 'socket,id=c2,path=/tmp/2.sock,server=on,wait=off',
      '-mon', 'chardev=c2,mode=control',
      '-qmp-pretty', 'unix:/tmp/a,,3.sock,server=on,wait=off,id=q3',
      '--monitor', 'c4',
      '--chardev', 'socket,id=c4,path=/tmp/4.sock,server=on,wait=off',
    ]);
    expect(cl.monitors.map((m) => [m.id, m.endpoint.kind === 'listen' && m.endpoint.path, m.pretty])).toEqual([
      [undefined, '/tmp/1.sock', false],
      ['c2', '/tmp/2.sock', false],
      ['q3', '/tmp/a,3.sock', true],
      ['c4', '/tmp/4.sock', false],
    ]);
  });

  it('reads client-mode sockets (server off) as monitors that connect out', () => {
    const cl = parseCommandLine(['-chardev', 'socket,id=mon,path=/tmp/c.sock', '-mon', 'chardev=mon,mode=control', '-qmp', 'unix:/tmp/d.sock']);
    expect(cl.monitors.map((m) => [m.id, m.endpoint])).toEqual([
      ['mon', { kind: 'connect', path: '/tmp/c.sock' }],
      [undefined, { kind: 'connect', path: '/tmp/d.sock' }],
    ]);
  });

  it('reads -drive as flat QemuOpts', () => {
    const cl = parseCommandLine(['-drive', 'if=none,id=d0,file=/tmp/a,,b.qcow2,format=qcow2,readonly=on', '-drive', 'if=none,id=d1,driver=null-co']);
    expect(cl.drives.map((d) => d.options)).toEqual([
      { if: 'none', id: 'd0', file: '/tmp/a,b.qcow2', format: 'qcow2', readonly: 'on' },
      { if: 'none', id: 'd1', driver: 'null-co' },
    ]);
  });

  it('accepts the no-op compatibility options in their other spellings', () => {
    expect(parseCommandLine(['-machine', 'none', '--machine=type=none', '-M', 'none,accel=tcg', '--nodefaults', '--display=none'])).toEqual({
      monitors: [],
      blockdevs: [],
      drives: [],
      objects: [],
      devices: [],
      machine: { type: 'none', accel: 'tcg', properties: {}, option: '-M none,accel=tcg', noDefaults: true },
      web: false,
    });
  });

  it("reads QEMU's Python harness launch line (QEMUMachine with qtest)", () => {
    const cl = parseCommandLine([
      '-display', 'none', '-vga', 'none', '-chardev', 'socket,id=mon,fd=0', '-mon', 'chardev=mon,mode=control',
      '-qtest', 'unix:path=/tmp/q-qtest.sock', '-accel', 'qtest', '-nodefaults', '-serial', 'none', '-M', 'pc',
      '-device', 'virtio-blk-pci,drive=d0,id=v0', '-drive', 'if=virtio,driver=null-co',
    ].map((word) => (word === 'socket,id=mon,fd=0' ? `socket,id=mon,fd=${inheritedSocketFd}` : word)));
    expect(cl.monitors.map((m) => [m.id, m.endpoint])).toEqual([['mon', { kind: 'inherited', fd: inheritedSocketFd, listening: false }]]);
    expect(cl.qtest?.endpoint).toEqual({ kind: 'connect', path: '/tmp/q-qtest.sock' });
    expect(cl.machine).toEqual({ type: 'pc', accel: 'qtest', properties: {}, option: '-M pc', noDefaults: true, vgaAndSerial: { vga: 'none', serial: 'none' } });
    expect(cl.devices).toEqual([{ options: { driver: 'virtio-blk-pci', drive: 'd0', id: 'v0' }, option: '-device virtio-blk-pci,drive=d0,id=v0' }]);
  });

  it('turns -device help and -drive format=help into their listings', () => {
    expect(parseCommandLine(['-device', 'help']).action).toBe('device-help');
    expect(parseCommandLine(['-drive', 'format=help']).action).toBe('format-help');
  });

  it('stops at --help and --version, as QEMU does', () => {
    expect(parseCommandLine(['-h', '-bogus']).action).toBe('help');
    expect(parseCommandLine(['--help']).action).toBe('help');
    expect(parseCommandLine(['-V']).action).toBe('version');
    expect(parseCommandLine(['-qmp', 'unix:/x,server=on,wait=off', '--version']).action).toBe('version');
  });
});

describe('parseCommandLine: errors name the option, qemu-system-x86_64 style', () => {
  it.each([
    // qemu-system-x86_64: -bogus: invalid option
    [['-bogus'], '-bogus: invalid option'],
    // qemu-system-x86_64: --bogus: invalid option
    [['--bogus'], '--bogus: invalid option'],
    [['--bogus=1'], '--bogus=1: invalid option'],
    // qemu-system-x86_64: -blockdev: requires an argument
    [['-blockdev'], '-blockdev: requires an argument'],
    [['-M', 'none', '--blockdev'], '--blockdev: requires an argument'],
    [['-qmp'], '-qmp: requires an argument'],
    [['--nodefaults=1'], '--nodefaults=1: does not take an argument'],
    // qemu-storage-daemon: foo: Unexpected argument
    [['disk.img'], 'disk.img: Unexpected argument'],
    [['-cpu', 'qemu64'], '-cpu: option not supported by qblockd'],
    // qemu-system-x86_64: -blockdev {: JSON parse error, premature EOI
    [['-blockdev', '{'], '-blockdev {: JSON parse error, premature EOI'],
    // qemu-system-x86_64: -blockdev null-co,a.1=x: Parameter 'a.0' missing
    [['-blockdev', 'null-co,a.1=x'], "-blockdev null-co,a.1=x: Parameter 'a.0' missing"],
    [['--blockdev=null-co,foo'], "--blockdev=null-co,foo: Expected '=' after parameter 'foo'"],
    // qemu-system-x86_64: -blockdev help: Help is not available for this option
    [['-blockdev', 'help'], '-blockdev help: Help is not available for this option'],
  ])('%j -> %s', (argv, message) => {
    expect(failure(argv)).toBe(message);
  });

  it.each([
    // qemu-system-x86_64: -qmp unix:/tmp/x.sock,server=on,wait=off,bogus=1: Invalid parameter 'bogus'
    [['-qmp', 'unix:/tmp/x.sock,server=on,wait=off,bogus=1'], "-qmp unix:/tmp/x.sock,server=on,wait=off,bogus=1: Invalid parameter 'bogus'"],
    // qemu-system-x86_64: -qmp unix:/tmp/x.sock,server=maybe,wait=off: Parameter 'server' expects 'on' or 'off'
    [['-qmp', 'unix:/tmp/x.sock,server=maybe,wait=off'], "-qmp unix:/tmp/x.sock,server=maybe,wait=off: Parameter 'server' expects 'on' or 'off'"],
    // qemu-system-x86_64: -qmp /tmp/x.sock: '/tmp/x.sock' is not a valid char driver
    [['-qmp', '/tmp/x.sock'], "-qmp /tmp/x.sock: '/tmp/x.sock' is not a valid char driver"],
    [['-qmp', 'tcp:localhost:4444,server=on,wait=off'], '-qmp tcp:localhost:4444,server=on,wait=off: only unix:PATH,server=on,wait=off is supported by qblockd'],
    [['-qmp', 'unix:/tmp/x.sock,server=on'], '-qmp unix:/tmp/x.sock,server=on: wait=on is not supported: qblockd does not wait for a client (use wait=off)'],
    [['-qmp', 'unix:/tmp/x.sock,server=on,wait=on'], '-qmp unix:/tmp/x.sock,server=on,wait=on: wait=on is not supported: qblockd does not wait for a client (use wait=off)'],
  ])('-qmp %j -> %s', (argv, message) => {
    expect(failure(argv)).toBe(message);
  });

  it.each([
    // qemu-system-x86_64: -chardev bogus,id=c0: 'bogus' is not a valid char driver name
    [['-chardev', 'bogus,id=c0'], "-chardev bogus,id=c0: 'bogus' is not a valid char driver name"],
    [['--chardev', 'file,id=c0,path=/tmp/f'], "--chardev file,id=c0,path=/tmp/f: chardev backend 'file' is not supported by qblockd (only 'socket' with 'path')"],
    // qemu-system-x86_64: -chardev socket,path=/tmp/y.sock: chardev: no id specified
    [['-chardev', 'socket,path=/tmp/y.sock'], '-chardev socket,path=/tmp/y.sock: chardev: no id specified'],
    // qemu-storage-daemon: --chardev id=c0: chardev: "c0" missing backend
    [['--chardev', 'id=c0'], '--chardev id=c0: chardev: "c0" missing backend'],
    // qemu-system-x86_64: -chardev socket,id=0c,...: Parameter 'id' expects an identifier
    [['-chardev', 'socket,id=0c,path=/y,server=on,wait=off'], "-chardev socket,id=0c,path=/y,server=on,wait=off: Parameter 'id' expects an identifier"],
    // qemu-system-x86_64: -chardev socket,id=c0,path=/tmp/z.sock,server=on,wait=off: Duplicate ID 'c0' for chardev
    [
      ['-chardev', 'socket,id=c0,path=/y,server=on,wait=off', '-chardev', 'socket,id=c0,path=/z,server=on,wait=off'],
      "-chardev socket,id=c0,path=/z,server=on,wait=off: Duplicate ID 'c0' for chardev",
    ],
    // qemu-storage-daemon: --chardev ...,bogus=1: Invalid parameter 'bogus'
    [['--chardev', 'socket,id=c0,path=/y,server=on,wait=off,bogus=1'], "--chardev socket,id=c0,path=/y,server=on,wait=off,bogus=1: Invalid parameter 'bogus'"],
    [['--chardev', 'socket,id=c0,host=localhost,port=4444,server=on,wait=off'], "--chardev socket,id=c0,host=localhost,port=4444,server=on,wait=off: socket option 'host' is not supported by qblockd"],
    // qemu-system-x86_64: -chardev socket,id=mon: Unable to parse FD number
    [['--chardev', 'socket,id=c0,server=on,wait=off'], '--chardev socket,id=c0,server=on,wait=off: Unable to parse FD number '],
    // qemu-system-x86_64: -chardev socket,id=mon,fd=abc: Unable to parse FD number abc
    [['-chardev', 'socket,id=c0,fd=abc'], '-chardev socket,id=c0,fd=abc: Unable to parse FD number abc'],
    // qemu-system-x86_64: -chardev socket,id=mon,fd=999: File descriptor '999' is not a socket
    [['-chardev', 'socket,id=c0,fd=999'], "-chardev socket,id=c0,fd=999: File descriptor '999' is not a socket"],
    // qemu-system-x86_64: -chardev socket,id=mon,fd=3,path=/x: None or one of 'path', 'fd' or 'host' option required.
    [['-chardev', 'socket,id=c0,fd=3,path=/x'], "-chardev socket,id=c0,fd=3,path=/x: None or one of 'path', 'fd' or 'host' option required."],
  ])('--chardev %j -> %s', (argv, message) => {
    expect(failure(argv)).toBe(message);
  });

  const C0 = ['--chardev', 'socket,id=c0,path=/y.sock,server=on,wait=off'];
  it.each([
    // qemu-storage-daemon: --monitor chardev=nope: chardev "nope" not found
    [['--monitor', 'chardev=nope'], '--monitor chardev=nope: chardev "nope" not found'],
    // qemu-system-x86_64: -mon chardev=nope: chardev "nope" not found
    [['-mon', 'chardev=nope,mode=control'], '-mon chardev=nope,mode=control: chardev "nope" not found'],
    // qemu-storage-daemon: --monitor chardev=c0,mode=readline: Only QMP is supported
    [[...C0, '--monitor', 'chardev=c0,mode=readline'], '--monitor chardev=c0,mode=readline: Only QMP is supported'],
    // qemu-system's -mon defaults to HMP
    [[...C0, '-mon', 'chardev=c0'], '-mon chardev=c0: Only QMP is supported'],
    // qemu-storage-daemon: --monitor chardev=c0,mode=bogus: Parameter 'mode' does not accept value 'bogus'
    [[...C0, '--monitor', 'chardev=c0,mode=bogus'], "--monitor chardev=c0,mode=bogus: Parameter 'mode' does not accept value 'bogus'"],
    // qemu-storage-daemon: --monitor chardev=c0,pretty=maybe: Parameter 'pretty' expects 'on' or 'off'
    [[...C0, '--monitor', 'chardev=c0,pretty=maybe'], "--monitor chardev=c0,pretty=maybe: Parameter 'pretty' expects 'on' or 'off'"],
    // qemu-storage-daemon: --monitor chardev=c0,bogus=1: Parameter 'bogus' is unexpected
    [[...C0, '--monitor', 'chardev=c0,bogus=1'], "--monitor chardev=c0,bogus=1: Parameter 'bogus' is unexpected"],
    // qemu-system-x86_64: -mon chardev=c0,bogus=1: Invalid parameter 'bogus'
    [[...C0, '-mon', 'chardev=c0,bogus=1'], "-mon chardev=c0,bogus=1: Invalid parameter 'bogus'"],
    // qemu-storage-daemon: --monitor mode=control: Parameter 'chardev' is missing
    [['--monitor', 'mode=control'], "--monitor mode=control: Parameter 'chardev' is missing"],
  ])('--monitor %j -> %s', (argv, message) => {
    expect(failure(argv)).toBe(message);
  });

  it.each([
    // qemu-system-x86_64: -accel foo: invalid accelerator foo
    [['-accel', 'foo'], '-accel foo: invalid accelerator foo'],
    // qemu-system-x86_64: invalid accelerator foo
    [['-machine', 'none,accel=foo'], 'invalid accelerator foo'],
    // qemu-system-x86_64: unknown vga type: foo
    [['-vga', 'foo'], 'unknown vga type: foo'],
    [['-vga', 'std'], "-vga std: vga 'std' is not supported by qblockd (only none)"],
    [['-serial', 'stdio'], '-serial stdio: only -serial none or null is supported by qblockd'],
    // qemu-system-x86_64: -display bogus: Parameter 'type' does not accept value 'bogus'
    [['-display', 'bogus'], "-display bogus: Parameter 'type' does not accept value 'bogus'"],
    // qemu-system-x86_64: -display none,bogus=1: Parameter 'bogus' is unexpected
    [['-display', 'none,bogus=1'], "-display none,bogus=1: Parameter 'bogus' is unexpected"],
    [['-display', 'gtk'], "-display gtk: display 'gtk' is not supported by qblockd (only none)"],
    // qemu-system-x86_64: -drive if=none,id=d0,,x: Parameter 'id' expects an identifier
    [['-drive', 'if=none,id=d0,,x'], "-drive if=none,id=d0,,x: Parameter 'id' expects an identifier"],
    // qemu-system-x86_64: -drive if=none,id=d0,driver=null-co: Duplicate ID 'd0' for drive
    [['-drive', 'if=none,id=d0', '-drive', 'if=none,id=d0,driver=null-co'], "-drive if=none,id=d0,driver=null-co: Duplicate ID 'd0' for drive"],
    // qemu-system-x86_64: -object throttle-group,id=tg: Duplicate ID 'tg' for object (the JSON form has no such check)
    [['-object', 'throttle-group,id=tg', '-object', 'throttle-group,id=tg'], "-object throttle-group,id=tg: Duplicate ID 'tg' for object"],
    // qemu-system-x86_64: -object id=tg: Parameter 'qom-type' is missing
    [['-object', 'id=tg'], "-object id=tg: Parameter 'qom-type' is missing"],
    // qemu-system-x86_64: -object {"qom-type":"throttle-group": JSON parse error, premature EOI
    [['-object', '{"qom-type":"throttle-group"'], '-object {"qom-type":"throttle-group": JSON parse error, premature EOI'],
  ])('%j -> %s', (argv, message) => {
    expect(failure(argv)).toBe(message);
  });
});

describe('help and version', () => {
  it('lists every supported option', () => {
    const help = helpText();
    for (const option of ['--help', '--version', '--config', '--blockdev', '-drive', '-qmp', '-qmp-pretty', '--chardev', '--monitor', '-mon', '-machine', '-display', '-nodefaults', '-nographic', '-S']) {
      expect(help).toContain(option);
    }
  });

  it('names qblockd, its version and the emulated QEMU', () => {
    expect(versionText()).toMatch(/^qblockd \d+\.\d+\.\d+ \(QEMU 7\.2 QMP emulation\)\n$/);
  });
});
