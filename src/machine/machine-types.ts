/**
 * The machines a QEMU launch line may name. qblockd runs no guest: a machine only says
 * which disk buses exist, so that -device and -drive if=ide|virtio attach where QEMU
 * would attach them and query-block names them as QEMU 7.2 does.
 */
export interface MachineType {
  /** The QOM type, as QEMU names it in property errors ("pc-i440fx-7.2-machine.x"). */
  qomType: string;
  /** The root PCI bus's name (for bus=), if PCI devices (virtio-blk-pci, SCSI controllers) can be plugged. */
  pciBus?: string;
  /**
   * On-board IDE: buses and units per bus (pc: PIIX3, 2 x 2; q35: ICH9 AHCI, 6 x 1), and the
   * index among /machine/unattached/device[N] of its first drive's device, with and without
   * -nodefaults, before any floppy drive's objects.
   */
  ide?: { buses: number; unitsPerBus: number; firstDiskObject: ByDefaults<number> };
  /**
   * Floppy drives (two units): the index of the first drive's device object, and how many
   * objects the controller itself adds (q35 has none on board) ahead of the IDE drives.
   */
  floppy?: { firstObject: ByDefaults<number>; controllerObjects: number };
  /** Without -nodefaults: an empty floppy drive floppy0 (pc); both get an empty CD-ROM at IDE index 2 and sd0. */
  defaultFloppy: boolean;
  /**
   * Which of the default VGA device and serial port are created ahead of the floppy and IDE
   * drives' objects: the `defaults` indexes above count them, the `nodefaults` ones do not.
   */
  defaultsAhead?: { vga: boolean; serial: boolean };
}

/** A figure that differs with the machine's default devices (`defaults`) and without them (-nodefaults). */
export interface ByDefaults<T> {
  defaults: T;
  nodefaults: T;
}

const PC: MachineType = {
  qomType: 'pc-i440fx-7.2-machine',
  pciBus: 'pci.0',
  ide: { buses: 2, unitsPerBus: 2, firstDiskObject: { defaults: 22, nodefaults: 18 } },
  floppy: { firstObject: { defaults: 16, nodefaults: 13 }, controllerObjects: 0 },
  defaultFloppy: true,
  defaultsAhead: { vga: true, serial: true },
};
const Q35: MachineType = {
  qomType: 'pc-q35-7.2-machine',
  pciBus: 'pcie.0',
  ide: { buses: 6, unitsPerBus: 1, firstDiskObject: { defaults: 18, nodefaults: 16 } },
  floppy: { firstObject: { defaults: 14, nodefaults: 12 }, controllerObjects: 1 },
  defaultFloppy: false,
  defaultsAhead: { vga: false, serial: true },
};

/** By name and alias; the object indexes are QEMU 7.2's, observed. */
export const MACHINE_TYPES: Readonly<Record<string, MachineType>> = {
  none: { qomType: 'none-machine', defaultFloppy: false },
  pc: PC,
  'pc-i440fx-7.2': PC,
  q35: Q35,
  'pc-q35-7.2': Q35,
};
