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
 * Commands whose argument or result types still describe less than QEMU's: members qblockd
 * never fills (backing_file, tray_open, ...), blockdev-add's full driver set, the union
 * behind query-qmp-schema's own SchemaInfo, blockdev-create's drivers (file and qcow2) and its encrypt options. Everything else must match QEMU 7.2 exactly.
 */
const KNOWN_SCHEMA_GAPS = new Set(['query-qmp-schema', 'blockdev-add', 'blockdev-create', 'query-block', 'query-named-block-nodes', 'transaction', 'block-export-add']);

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

  it("describes arguments and results as QEMU does, outside the commands named as known gaps", () => {
    const [mine, theirs] = schemas as [Map<string, SchemaEntry>, Map<string, SchemaEntry>];
    for (const entry of mine.values()) {
      if (entry['meta-type'] !== 'command' || KNOWN_SCHEMA_GAPS.has(entry.name)) continue;
      const theirEntry = theirs.get(entry.name)!;
      for (const key of ['arg-type', 'ret-type']) {
        expect([entry.name, key, expand(mine, entry[key] as string)]).toEqual([entry.name, key, expand(theirs, theirEntry[key] as string)]);
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
