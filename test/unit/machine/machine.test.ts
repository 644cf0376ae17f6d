import { describe, expect, it } from 'vitest';
import { BlockGraph } from '../../../src/block/graph.ts';
import { deviceHelpText } from '../../../src/machine/device-models.ts';
import { Machine } from '../../../src/machine/machine.ts';

/** A machine (-nodefaults) with -blockdev null-co nodes n0..n3 and -drive if=none,id=d0. */
function setup(type: string) {
  const graph = new BlockGraph();
  for (const name of ['n0', 'n1', 'n2', 'n3']) graph.addBlockdev({ driver: 'null-co', 'node-name': name });
  const machine = new Machine(graph, { type, properties: {}, noDefaults: true });
  graph.addDrive(machine.placeDrive({ if: 'none', id: 'd0' }), { driver: 'null-co' });
  return { graph, machine };
}

const failure = (run: () => void): string => {
  try {
    run();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('accepted');
};

describe('Machine: guest disks as attachment points (facts observed on QEMU 7.2)', () => {
  it('names disks as query-block shows them: ids for SCSI/IDE disks, the virtio backend path, anonymous paths in creation order', () => {
    const { machine } = setup('q35');
    machine.addDevice({ driver: 'virtio-blk-pci', drive: 'd0', id: 'v0' });
    machine.addDevice({ driver: 'virtio-scsi-pci' });
    machine.addDevice({ driver: 'scsi-hd', drive: 'n0', id: 's0' });
    machine.addDevice({ driver: 'scsi-hd', drive: 'n1' });
    machine.addDevice({ driver: 'ide-hd', drive: 'n2' });
    machine.attachDrives();
    expect(machine.diskOfDrive('d0')?.qdev).toBe('/machine/peripheral/v0/virtio-backend');
    expect(machine.unnamedDisks().map(({ disk, node }) => [node.nodeName, disk.qdev])).toEqual([
      ['n0', 's0'],
      ['n1', '/machine/peripheral-anon/device[1]'],
      ['n2', '/machine/peripheral-anon/device[2]'],
    ]);
  });

  it('places -drive if=ide by index and if=virtio after every -device', () => {
    const { graph, machine } = setup('pc');
    const drives: Array<Record<string, string>> = [{ if: 'ide' }, { if: 'virtio' }, { if: 'ide', index: '3' }];
    const names = drives.map((options) => {
      const name = machine.placeDrive(options);
      graph.addDrive(name, { driver: 'null-co' });
      return name;
    });
    expect(names).toEqual(['ide0-hd0', 'virtio0', 'ide1-hd1']);
    machine.addDevice({ driver: 'virtio-blk-pci', drive: 'n0' });
    machine.attachDrives();
    expect(names.map((name) => machine.diskOfDrive(name)?.qdev)).toEqual([
      '/machine/unattached/device[18]',
      '/machine/peripheral-anon/device[1]/virtio-backend',
      '/machine/unattached/device[19]',
    ]);
  });

  it("refuses what QEMU refuses, with QEMU's words", () => {
    expect(failure(() => new Machine(new BlockGraph(), { type: 'foo', properties: {} }))).toBe(
      'unsupported machine type\nUse -machine help to list supported machines',
    );
    const { machine } = setup('none');
    expect(failure(() => machine.addDevice({ driver: 'virtio-blk-pci', drive: 'n0' }))).toBe("No 'PCI' bus found for device 'virtio-blk-pci'");
    expect(failure(() => machine.placeDrive({ if: 'ide' }))).toBe('machine type does not support if=ide,bus=0,unit=0');
    const pc = setup('pc').machine;
    expect(failure(() => pc.addDevice({ driver: 'scsi-hd', drive: 'n0' }))).toBe("No 'SCSI' bus found for device 'scsi-hd'");
    expect(failure(() => pc.addDevice({ driver: 'virtio-blk-pci' }))).toBe('drive property not set');
    expect(failure(() => pc.addDevice({ driver: 'virtio-blk-pci', drive: 'nope' }))).toBe("Property 'virtio-blk-device.drive' can't find value 'nope'");
    expect(failure(() => pc.addDevice({ driver: 'virtio-blk-pci', drive: 'n0', bogus: '1' }))).toBe("Property 'virtio-blk-pci.bogus' not found");
    expect(failure(() => pc.addDevice({ driver: 'virtio-blk-pci', drive: 'n0', wwn: '1' }))).toBe(
      "property 'wwn' of virtio-blk-pci is not supported by qblockd",
    );
    pc.addDevice({ driver: 'virtio-blk-pci', drive: 'd0' });
    expect(failure(() => pc.addDevice({ driver: 'virtio-blk-pci', drive: 'd0' }))).toBe("Drive 'd0' is already in use by another device");
  });

  it('switches the node under a disk with qom-set, refusing a node another disk holds', () => {
    const { machine } = setup('pc');
    machine.addDevice({ driver: 'virtio-blk-pci', drive: 'd0', id: 'v0' });
    machine.addDevice({ driver: 'virtio-scsi-pci' });
    machine.addDevice({ driver: 'scsi-hd', drive: 'n0', id: 's0' });
    machine.setProperty('/machine/peripheral/v0', 'drive', 'n1');
    expect(machine.getProperty('v0', 'drive')).toBe('d0');
    machine.setProperty('s0', 'drive', 'n2');
    expect(machine.getProperty('s0', 'drive')).toBe('n2');
    expect(failure(() => machine.setProperty('s0', 'drive', 'n1'))).toBe(
      "Permission conflict on node 'n1': permissions 'write' are both required by block device 'd0' (uses node 'n1' as 'root' child) " +
        "and unshared by block device 's0' (uses node 'n1' as 'root' child).",
    );
    expect(failure(() => machine.getProperty('s0', 'bogus'))).toBe("Property 'scsi-hd.bogus' not found");
    expect(failure(() => machine.getProperty('nope', 'drive'))).toBe("Device 'nope' not found");
  });

  it('moves a disk over a -blockdev node onto a filter put above that node, and back when the filter goes', () => {
    const { graph, machine } = setup('pc');
    machine.addDevice({ driver: 'ide-hd', drive: 'n0', id: 'i0' });
    machine.attachDrives();
    const n0 = graph.findNode('n0')!;
    const filter = graph.insertFilter(n0, n0.driver, 'flt', n0.asChild());
    expect(machine.unnamedDisks().map(({ node }) => node.nodeName)).toEqual(['flt']);
    expect(machine.getProperty('i0', 'drive')).toBe('flt');
    expect(machine.conflictWithWriter(filter)).toContain("unshared by block device 'i0'");
    expect(machine.conflictWithWriter(n0)).toBeUndefined();
    graph.removeFilter(filter);
    expect(machine.getProperty('i0', 'drive')).toBe('n0');
  });

  it("adds pc's default drives without -nodefaults, after the command line's, leaving out the CD-ROM for a -device ide-hd", () => {
    const graph = new BlockGraph();
    const machine = new Machine(graph, { type: 'pc', properties: {}, vgaAndSerial: { vga: 'none' } });
    graph.addDrive(machine.placeDrive({ if: 'floppy' }), { driver: 'null-co' }, { driver: 'null-co' });
    machine.attachDrives();
    expect(graph.namedBackends().map(([name, node]) => [name, node !== undefined])).toEqual([
      ['floppy0', true],
      ['ide1-cd0', false],
      ['sd0', false],
    ]);
    expect(machine.getProperty('/machine/unattached/device[22]', 'drive')).toBe('ide1-cd0');
    expect(machine.nodeForQemuIo('/machine/unattached/device[22]')).toBeUndefined();
    expect(failure(() => graph.findDeviceOrNode('sd0'))).toBe("Device 'sd0' has no medium");
    const other = new Machine(new BlockGraph(), { type: 'pc', properties: {} });
    expect(failure(() => other.placeDrive({ if: 'floppy', index: '2' }))).toBe('machine type does not support if=floppy,bus=0,unit=2');
  });

  it('lists its device models in the format of QEMU -device help', () => {
    expect(deviceHelpText()).toContain('name "virtio-blk-pci", bus PCI, alias "virtio-blk"\n');
    expect(deviceHelpText()).toContain('name "scsi-hd", bus SCSI, desc "virtual SCSI disk"\n');
  });
});
