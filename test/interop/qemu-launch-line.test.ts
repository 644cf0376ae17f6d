import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DaemonProcess, QBLOCKD } from '../support/daemon.ts';
import { describeInterop } from '../support/qemu.ts';

type SchemaEntry = { name: string; 'meta-type': string; features?: string[]; [key: string]: unknown };

/** A schema type with its masked names resolved, so two programs' schemas compare by structure. */
function expand(entries: Map<string, SchemaEntry>, name: string, seen: readonly string[] = []): unknown {
  const entry = entries.get(name);
  if (!entry) return `unknown type ${name}`;
  if (seen.includes(name)) return 'recursive';
  const inner = [...seen, name];
  const members = (list: unknown) =>
    (list as Array<{ name: string; type: string; default?: null; features?: string[] }>).map((member) => ({
      name: member.name,
      optional: 'default' in member,
      type: expand(entries, member.type, inner),
      features: member.features,
    }));
  switch (entry['meta-type']) {
    case 'builtin':
      return entry.name;
    case 'array':
      return [expand(entries, entry['element-type'] as string, inner)];
    case 'enum':
      return { enum: entry.values, features: entry.features };
    case 'alternate':
      return { alternate: (entry.members as Array<{ type: string }>).map((member) => expand(entries, member.type, inner)) };
    default:
      return {
        members: members(entry.members),
        tag: entry.tag,
        variants: (entry.variants as Array<{ case: string; type: string }> | undefined)?.map((variant) => ({
          case: variant.case,
          type: expand(entries, variant.type, inner),
        })),
        features: entry.features,
      };
  }
}

/** Drivers qblockd has no code for: blockdev-add refuses them. */
const BLOCKDEV_DRIVERS_NOT_IMPLEMENTED = [
  'blklogwrites', 'blkreplay', 'blkverify', 'bochs', 'cloop', 'compress', 'copy-on-read', 'dmg', 'ftp', 'ftps',
  'gluster', 'host_cdrom', 'host_device', 'http', 'https', 'iscsi', 'luks', 'nbd', 'nfs', 'nvme', 'parallels',
  'preallocate', 'qcow', 'qed', 'quorum', 'rbd', 'replication', 'ssh', 'vdi', 'vhdx', 'vmdk', 'vpc', 'vvfat',
];
/** object-add's types other than throttle-group: qblockd refuses them as QEMU refuses a type it does not know. */
const OBJECT_TYPES_NOT_IMPLEMENTED = [
  'authz-list', 'authz-listfile', 'authz-pam', 'authz-simple', 'can-bus', 'can-host-socketcan', 'colo-compare',
  'cryptodev-backend', 'cryptodev-backend-builtin', 'cryptodev-backend-lkcf', 'cryptodev-vhost-user', 'dbus-vmstate',
  'filter-buffer', 'filter-dump', 'filter-mirror', 'filter-redirector', 'filter-replay', 'filter-rewriter', 'input-barrier',
  'input-linux', 'iothread', 'main-loop', 'memory-backend-epc', 'memory-backend-file', 'memory-backend-memfd',
  'memory-backend-ram', 'pef-guest', 'pr-manager-helper', 'qtest', 'rng-builtin', 'rng-egd', 'rng-random', 'secret',
  'secret_keyring', 'sev-guest', 'thread-context', 's390-pv-guest', 'tls-creds-anon', 'tls-creds-psk', 'tls-creds-x509',
  'tls-cipher-suites', 'x-remote-object', 'x-vfio-user-server',
];
/** Options of qblockd's drivers it does not act on, in a BlockdevOptions at `at`. */
const driverOptionsNotImplemented = (at: string) => ({
  [`${at}{blkdebug}`]: ['config', 'align', 'max-transfer', 'opt-write-zero', 'max-write-zero', 'opt-discard', 'max-discard',
    'take-child-perms', 'unshare-child-perms'],
  [`${at}{qcow2}`]: ['overlap-check', 'encrypt'],
});

/**
 * What qblockd does not implement of QEMU's argument types, and so does not describe, per
 * command: union cases by where the union sits (`variants`, a path of member names and
 * {cases}) and members of one case (`members`, by the case's path). QEMU's
 * description minus exactly these must equal qblockd's, and every entry must still be in
 * QEMU's schema.
 */
const NOT_IMPLEMENTED: Record<string, { variants: Record<string, string[]>; members: Record<string, string[]> }> = {
  'blockdev-add': { variants: { '': BLOCKDEV_DRIVERS_NOT_IMPLEMENTED }, members: driverOptionsNotImplemented('') },
  'blockdev-reopen': { variants: { '.options': BLOCKDEV_DRIVERS_NOT_IMPLEMENTED }, members: driverOptionsNotImplemented('.options') },
  'blockdev-create': {
    variants: {
      '.options': [...BLOCKDEV_DRIVERS_NOT_IMPLEMENTED, 'blkdebug', 'copy-before-write', 'null-aio', 'null-co', 'raw', 'snapshot-access', 'throttle'],
      '.options{qcow2}.file': BLOCKDEV_DRIVERS_NOT_IMPLEMENTED,
      '.options{qcow2}.data-file': BLOCKDEV_DRIVERS_NOT_IMPLEMENTED,
    },
    members: {
      ...driverOptionsNotImplemented('.options{qcow2}.file'),
      ...driverOptionsNotImplemented('.options{qcow2}.data-file'),
      '.options{qcow2}.encrypt{luks}': ['cipher-alg', 'cipher-mode', 'ivgen-alg', 'ivgen-hash-alg', 'hash-alg', 'iter-time'],
    },
  },
  'object-add': { variants: { '': OBJECT_TYPES_NOT_IMPLEMENTED }, members: {} },
  'block-export-add': {
    variants: {},
    members: {
      '{vhost-user-blk}': ['addr', 'logical-block-size', 'num-queues'],
      '{fuse}': ['mountpoint', 'growable', 'allow-other'],
      '{vduse-blk}': ['name', 'num-queues', 'queue-size', 'logical-block-size', 'serial'],
    },
  },
};

type ExpandedObject = { members: Array<{ name: string; type: unknown }>; tag?: string; variants?: Array<{ case: string; type: ExpandedObject }> };

/** QEMU's expanded type at `path` without what `omit` names; `used` collects the entries that applied. */
function withoutUnimplemented(expanded: unknown, omit: (typeof NOT_IMPLEMENTED)[string], used: Set<string>, path = ''): unknown {
  if (Array.isArray(expanded)) return expanded.map((element) => withoutUnimplemented(element, omit, used, path));
  if (typeof expanded !== 'object' || expanded === null) return expanded;
  if (!('members' in expanded)) {
    return Object.fromEntries(Object.entries(expanded).map(([key, value]) => [key, withoutUnimplemented(value, omit, used, path)]));
  }
  const object = expanded as ExpandedObject;
  const cut = <T>(list: T[], names: string[] | undefined, nameOf: (item: T) => string, key: string) =>
    list.filter((item) => {
      const dropped = names?.includes(nameOf(item)) ?? false;
      if (dropped) used.add(`${key}:${nameOf(item)}`);
      return !dropped;
    });
  return {
    ...object,
    members: object.members.map((member) => ({ ...member, type: withoutUnimplemented(member.type, omit, used, `${path}.${member.name}`) })),
    variants: object.variants && cut(object.variants, omit.variants[path], (variant) => variant.case, path).map((variant) => {
      const key = `${path}{${variant.case}}`;
      const type = withoutUnimplemented(variant.type, omit, used, key) as ExpandedObject;
      return { ...variant, type: { ...type, members: cut(type.members, omit.members[key], (member) => member.name, key) } };
    }),
  };
}

describeInterop('QEMU launch lines and query-qmp-schema against QEMU 7.2', { qemuSystem: true }, () => {
  let ours: DaemonProcess;
  let qemu: DaemonProcess;
  const schemas: Array<Map<string, SchemaEntry>> = [];

  beforeAll(async () => {
    ours = await DaemonProcess.start();
    qemu = await DaemonProcess.start([], { program: 'qemu-system-x86_64' });
    for (const daemon of [ours, qemu]) {
      const client = await daemon.client();
      const reply = await client.command({ execute: 'query-qmp-schema' });
      schemas.push(new Map((reply.return as SchemaEntry[]).map((entry) => [entry.name, entry])));
    }
  });
  afterAll(async () => {
    await ours?.stop();
    await qemu?.stop();
  });

  it("flags each command qblockd implements with QEMU's features (unstable, ...)", () => {
    const [mine, theirs] = schemas as [Map<string, SchemaEntry>, Map<string, SchemaEntry>];
    const commands = [...mine.values()].filter((entry) => entry['meta-type'] === 'command');
    expect(commands.length).toBeGreaterThan(20);
    for (const command of commands) expect([command.name, command.features]).toEqual([command.name, theirs.get(command.name)!.features]);
    expect(mine.get('x-debug-block-dirty-bitmap-sha256')!.features).toEqual(['unstable']);
  });

  it("describes every command's arguments and results as QEMU does, leaving out only what it does not implement", () => {
    const [mine, theirs] = schemas as [Map<string, SchemaEntry>, Map<string, SchemaEntry>];
    for (const entry of mine.values()) {
      if (entry['meta-type'] !== 'command') continue;
      const theirEntry = theirs.get(entry.name)!;
      for (const key of ['arg-type', 'ret-type']) {
        let expected = expand(theirs, theirEntry[key] as string);
        const omit = NOT_IMPLEMENTED[entry.name];
        if (key === 'arg-type' && omit) {
          const used = new Set<string>();
          expected = withoutUnimplemented(expected, omit, used);
          const listed = [
            ...Object.entries(omit.variants).flatMap(([path, cases]) => cases.map((name) => `${path}:${name}`)),
            ...Object.entries(omit.members).flatMap(([key, names]) => names.map((name) => `${key}:${name}`)),
          ];
          expect([entry.name, listed.filter((name) => !used.has(name))]).toEqual([entry.name, []]);
        }
        expect([entry.name, key, expand(mine, entry[key] as string)]).toEqual([entry.name, key, expected]);
      }
    }
  });

  it('lists in -device help and -drive format=help only what QEMU lists too, in its format', () => {
    const listing = (program: string, args: string[]) => execFileSync(program, args, { encoding: 'utf8' });
    const devices = listing(QBLOCKD, ['-device', 'help']).trimEnd().split('\n');
    expect(devices[0]).toBe('Storage devices:');
    const qemuDevices = new Set(listing('qemu-system-x86_64', ['-device', 'help']).split('\n'));
    for (const line of devices) expect(qemuDevices).toContain(line);
    const formats = listing(QBLOCKD, ['-drive', 'format=help']).trimEnd().split('\n');
    const qemuFormats = listing('qemu-system-x86_64', ['-drive', 'format=help']).trimEnd().split('\n');
    expect(formats.map((line) => line.split(': ')[0])).toEqual(qemuFormats.map((line) => line.split(': ')[0]));
    formats.forEach((line, index) => {
      const theirs = new Set(qemuFormats[index]!.split(': ')[1]!.split(' '));
      for (const format of line.split(': ')[1]!.split(' ')) expect(theirs).toContain(format);
    });
  });
});
