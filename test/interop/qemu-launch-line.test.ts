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

/**
 * What qblockd does not implement of QEMU's argument types, and so does not describe: drivers
 * and export types it has no code for (blockdev-add and block-export-add refuse them), and the
 * options of its drivers it does not act on. QEMU's description minus exactly these must equal
 * qblockd's; every entry must still be in QEMU's schema and absent from qblockd's.
 */
const NOT_IMPLEMENTED: Record<string, { variants: string[]; members: Record<string, string[]> }> = {
  'blockdev-add': {
    variants: [
      'blklogwrites', 'blkreplay', 'blkverify', 'bochs', 'cloop', 'compress', 'copy-on-read', 'dmg', 'ftp', 'ftps',
      'gluster', 'host_cdrom', 'host_device', 'http', 'https', 'iscsi', 'luks', 'nbd', 'nfs', 'nvme', 'parallels',
      'preallocate', 'qcow', 'qed', 'quorum', 'rbd', 'replication', 'ssh', 'throttle', 'vdi', 'vhdx', 'vmdk', 'vpc', 'vvfat',
    ],
    members: {
      blkdebug: ['config', 'align', 'max-transfer', 'opt-write-zero', 'max-write-zero', 'opt-discard', 'max-discard',
        'take-child-perms', 'unshare-child-perms'],
      qcow2: ['overlap-check', 'encrypt'],
    },
  },
  'block-export-add': {
    variants: [],
    members: {
      'vhost-user-blk': ['addr', 'logical-block-size', 'num-queues'],
      fuse: ['mountpoint', 'growable', 'allow-other'],
      'vduse-blk': ['name', 'num-queues', 'queue-size', 'logical-block-size', 'serial'],
    },
  },
};

type Expanded = { members: Array<{ name: string }>; variants?: Array<{ case: string; type: Expanded }> };

/** QEMU's expanded argument type without what NOT_IMPLEMENTED names; each name must be there to remove. */
function withoutUnimplemented(command: string, expanded: Expanded): Expanded {
  const omit = NOT_IMPLEMENTED[command];
  if (!omit) return expanded;
  const variants = expanded.variants ?? [];
  for (const name of [...omit.variants, ...Object.keys(omit.members)]) expect([command, variants.some((variant) => variant.case === name)]).toEqual([command, true]);
  return {
    ...expanded,
    variants: variants
      .filter((variant) => !omit.variants.includes(variant.case))
      .map((variant) => {
        const members = omit.members[variant.case];
        if (!members) return variant;
        for (const name of members) expect([command, variant.case, variant.type.members.some((member) => member.name === name)]).toEqual([command, variant.case, true]);
        return { ...variant, type: { ...variant.type, members: variant.type.members.filter((member) => !members.includes(member.name)) } };
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
        if (key === 'arg-type') expected = withoutUnimplemented(entry.name, expected as Expanded);
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
