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
  /** On-board IDE: buses and units per bus (pc: PIIX3, 2 x 2; q35: ICH9 AHCI, 6 x 1). */
  ide?: { buses: number; unitsPerBus: number; firstDiskObject: number };
}

const PC: MachineType = { qomType: 'pc-i440fx-7.2-machine', pciBus: 'pci.0', ide: { buses: 2, unitsPerBus: 2, firstDiskObject: 18 } };
const Q35: MachineType = { qomType: 'pc-q35-7.2-machine', pciBus: 'pcie.0', ide: { buses: 6, unitsPerBus: 1, firstDiskObject: 16 } };

/**
 * By name and alias. `firstDiskObject` is the index QEMU 7.2 gives the first on-board IDE
 * disk among /machine/unattached/device[N] with -nodefaults (observed: pc 18, q35 16).
 */
export const MACHINE_TYPES: Readonly<Record<string, MachineType>> = {
  none: { qomType: 'none-machine' },
  pc: PC,
  'pc-i440fx-7.2': PC,
  q35: Q35,
  'pc-q35-7.2': Q35,
};
