/** A bus a device plugs into or provides. */
export type BusKind = 'PCI' | 'SCSI' | 'IDE' | 'floppy';

/**
 * A -device model qblockd emulates as an attachment point: a disk holds a BlockBackend
 * (its `drive` property); a controller provides a bus for disks.
 */
export interface DeviceModel {
  name: string;
  bus: BusKind;
  /** For -device help, as QEMU lists the model. */
  alias?: string;
  desc?: string;
  /**
   * A disk: the QOM child that owns the BlockBackend ("virtio-backend"), if not the device itself;
   * for a drive with removable media, whether it has a tray (a CD-ROM; a floppy drive has none).
   */
  disk?: {
    backendChild?: string;
    qomType: string;
    removable?: { tray: boolean };
    /** A -device model's refusal when no drive= is given. */
    noDrive?: string;
    /** Given on the command line, it makes QEMU leave out the machine's default CD-ROM drive. */
    replacesDefaultCdrom?: true;
  };
  provides?: BusKind;
  /** A SCSI controller's highest target and LUN (one channel). */
  scsiLimits?: { maxTarget: number; maxLun: number };
}

export const DEVICE_MODELS: readonly DeviceModel[] = [
  { name: 'ide-hd', bus: 'IDE', desc: 'virtual IDE disk', disk: { qomType: 'ide-hd', noDrive: 'No drive specified', replacesDefaultCdrom: true } },
  { name: 'lsi53c895a', bus: 'PCI', alias: 'lsi', provides: 'SCSI', scsiLimits: { maxTarget: 7, maxLun: 0 } },
  { name: 'scsi-hd', bus: 'SCSI', desc: 'virtual SCSI disk', disk: { qomType: 'scsi-hd', noDrive: 'drive property not set', replacesDefaultCdrom: true } },
  {
    name: 'virtio-blk-pci',
    bus: 'PCI',
    alias: 'virtio-blk',
    disk: { backendChild: 'virtio-backend', qomType: 'virtio-blk-device', noDrive: 'drive property not set' },
  },
  { name: 'virtio-scsi-pci', bus: 'PCI', alias: 'virtio-scsi', provides: 'SCSI', scsiLimits: { maxTarget: 255, maxLun: 16383 } },
];

/** The machine's own drives for -drive if=ide,media=cdrom and if=floppy (not offered to -device). */
export const ON_BOARD_MODELS = {
  cdrom: { name: 'ide-cd', bus: 'IDE', disk: { qomType: 'ide-cd', removable: { tray: true } } },
  floppy: { name: 'floppy', bus: 'floppy', disk: { qomType: 'floppy', removable: { tray: false } } },
} as const satisfies Record<string, DeviceModel>;

export function findDeviceModel(name: string): DeviceModel | undefined {
  return DEVICE_MODELS.find((model) => model.name === name || model.alias === name);
}

/** `-device help`, in QEMU's format, listing the models qblockd supports. */
export function deviceHelpText(): string {
  const lines = DEVICE_MODELS.map((model) => {
    let line = `name "${model.name}", bus ${model.bus}`;
    if (model.alias) line += `, alias "${model.alias}"`;
    if (model.desc) line += `, desc "${model.desc}"`;
    return line;
  });
  return ['Storage devices:', ...lines, ''].join('\n');
}
