import { permissionConflict, UNNAMED_BACKEND, type NodeUser } from '../block/permission-conflict.ts';
import type { BlockGraph, UnnamedBackend } from '../block/graph.ts';
import type { BlockNode } from '../block/node.ts';
import { QmpError } from '../qmp/errors.ts';
import { qdictKeyOrder } from '../qmp/qdict-order.ts';
import { findDeviceModel, ON_BOARD_MODELS, type BusKind, type DeviceModel } from './device-models.ts';
import { checkBlockSizes, checkVirtioQueues, DISK_PROPERTIES, MODEL_PROPERTIES, type DeviceProperty, type PropertyValue } from './device-properties.ts';
import { MACHINE_TYPES, type MachineType } from './machine-types.ts';
import { isWellFormedId } from '../qmp/well-formed-id.ts';

/** The BlockBackend a guest disk holds: a named -drive one or an unnamed one over a node, both kept by the graph. */
type Backend = { name: string } | UnnamedBackend;

/** A guest disk: where a BlockBackend is attached, and the names QEMU gives that place. */
export interface GuestDisk {
  readonly model: DeviceModel;
  readonly id?: string;
  /** What query-block shows as `qdev`: the device id, else the canonical QOM path of the backend's owner. */
  readonly qdev: string;
  /** QOM objects answering the disk's properties, by canonical path, with their QOM type. */
  readonly qomObjects: ReadonlyArray<{ path: string; type: string }>;
  backend: Backend;
  /** Property values given on -device or filled in when the disk was realized; others have their defaults. */
  readonly properties: Map<string, PropertyValue>;
  /** Where a SCSI disk sits on its controller's bus. */
  readonly scsiAddress?: { controller: Controller; channel: number; target: number; lun: number };
}

interface Controller {
  model: DeviceModel;
  id?: string;
  path: string;
  /** The bus it provides: "ID.0", or for an anonymous controller "scsi.N", numbered among the anonymous ones. */
  busName: string;
}

/** -drive if=... placements a machine can host; other interfaces get QEMU's refusal. */
const DRIVE_INTERFACES = new Set(['none', 'ide', 'scsi', 'floppy', 'pflash', 'mtd', 'sd', 'virtio', 'xen']);
/** Device properties QEMU has and qblockd does not model: refused plainly rather than called unknown. */
const UNMODELLED_DEVICE_PROPERTIES = new Set([
  'addr', 'multifunction', 'wwn', 'werror', 'rerror', 'iothread', 'cyls', 'heads', 'secs',
  'rotation_rate', 'model', 'vendor', 'product', 'ver', 'romfile', 'rombar',
]);
const ON_BOARD_IDE_SERIAL = (slot: number) => `QM${String(slot + 1).padStart(5, '0')}`;

/**
 * The guest machine as an attachment point for disks: `-M none|pc|q35`, `-device` disks and
 * their controllers, and `-drive if=ide|virtio`. No guest runs; the machine keeps which
 * BlockBackend each disk holds and answers query-block's qdev names, qemu-io -d and the
 * `drive` property of qom-get / qom-set as QEMU 7.2 does.
 */
export class Machine {
  readonly type: MachineType;
  readonly accel: string;
  private readonly disks: GuestDisk[] = [];
  private readonly controllers: Controller[] = [];
  private readonly deviceIds = new Set<string>();
  private readonly bootIndexes = new Set<number>();
  /** -drive if=virtio backends: their devices are created after every -device, as in QEMU. */
  private readonly pendingVirtioDrives: Array<{ name: string; option?: string }> = [];
  private readonly ideDrives: Array<{ name: string; index: number; cdrom: boolean }> = [];
  private readonly floppyDrives: Array<{ name: string; index: number }> = [];
  /** Without -nodefaults, pc and q35 add their default drives. */
  private readonly defaults: boolean;
  /** How the VGA device and serial port ahead of the drives' objects move their numbers from the table's. */
  private readonly objectShift: number;
  /** A -device ide-hd or scsi-hd makes QEMU leave out the default CD-ROM. */
  private diskDeviceGiven = false;
  private anonymousDevices = 0;
  /** Drive indexes (bus x unitsPerBus + unit) taken by -device ide-hd. */
  private readonly ideDeviceSlots: number[] = [];
  private virtioDrives = 0;

  constructor(
    private readonly graph: BlockGraph,
    spec: { type?: string; accel?: string; properties?: Record<string, string>; noDefaults?: boolean; vgaAndSerial?: { vga?: 'none'; serial?: 'none' | 'null' } } | undefined,
  ) {
    const type = MACHINE_TYPES[spec?.type ?? 'none'];
    if (!type) throw new QmpError('unsupported machine type\nUse -machine help to list supported machines');
    this.type = type;
    this.accel = spec?.accel ?? 'tcg';
    this.defaults = spec?.noDefaults !== true;
    const ahead = type.defaultsAhead;
    const vga = this.defaults && spec?.vgaAndSerial?.vga !== 'none';
    const serial = spec?.vgaAndSerial?.serial === 'null' || (this.defaults && spec?.vgaAndSerial?.serial !== 'none');
    const counted = Number(this.defaults);
    this.objectShift = ahead ? (ahead.vga ? Number(vga) - counted : 0) + (ahead.serial ? Number(serial) - counted : 0) : 0;
    const property = Object.keys(spec?.properties ?? {})[0];
    if (property !== undefined) throw new QmpError(`Property '${type.qomType}.${property}' not found`);
  }

  /**
   * Where a -drive goes: its BlockBackend name, and whether the machine attaches a disk to it.
   * Call attachDrives() once every -drive and -device is in.
   */
  placeDrive(options: Record<string, string>, option?: string): string {
    const iface = options.if ?? 'ide';
    if (!DRIVE_INTERFACES.has(iface)) throw new QmpError(`unsupported bus type '${iface}'`);
    if (iface === 'none') {
      if (!options.id) throw new QmpError("parameter 'id' is required with if=none");
      return options.id;
    }
    if (iface === 'ide' && this.type.ide) return this.placeIdeDrive(options, this.type.ide);
    if (iface === 'floppy' && this.type.floppy) return this.placeFloppyDrive(options);
    if (iface === 'virtio' && this.type.pciBus !== undefined) {
      const name = options.id ?? `virtio${this.virtioDrives}`;
      this.virtioDrives++;
      this.pendingVirtioDrives.push({ name, option });
      return name;
    }
    throw new QmpError(`machine type does not support if=${iface},bus=0,unit=0`);
  }

  /**
   * -device DRIVER,...: a controller or a disk holding a -drive BlockBackend or a node. As in QEMU,
   * the bus is found first, then the properties are set in QDict order, then the device's realize
   * checks run in its model's order.
   */
  addDevice(options: Record<string, string>): void {
    const model = options.driver === undefined ? undefined : findDeviceModel(options.driver);
    if (!model) throw new QmpError(`'${options.driver ?? ''}' is not a valid device model name`);
    const id = options.id;
    if (id !== undefined) {
      if (!isWellFormedId(id)) {
        throw new QmpError("Parameter 'id' expects an identifier\nIdentifiers consist of letters, digits, '-', '.', '_', starting with a letter.");
      }
      if (this.deviceIds.has(id)) throw new QmpError(`Duplicate ID '${id}' for device`);
    }
    if (model.disk?.replacesDefaultCdrom) this.diskDeviceGiven = true;
    const bus = this.findBus(model, options.bus);
    const { values, drive } = this.setProperties(model, options);
    const path = this.devicePath(id);
    if (id !== undefined) this.deviceIds.add(id);
    if (model.provides) {
      const anonymous = this.controllers.filter((controller) => controller.id === undefined).length;
      this.controllers.push({ model, id, path, busName: id !== undefined ? `${id}.0` : `scsi.${anonymous}` });
      return;
    }
    const realize = REALIZE_STEPS[model.name]!;
    let scsiAddress: GuestDisk['scsiAddress'];
    for (const step of realize) {
      switch (step) {
        case 'ide-unit':
          values.set('unit', this.takeIdeUnit(bus.ideBus!, values.get('unit') as number | undefined));
          break;
        case 'scsi-address':
          scsiAddress = this.placeScsiDisk(bus.controller!, values);
          break;
        case 'drive':
          if (drive === undefined) throw new QmpError(model.disk!.noDrive!);
          if ('name' in drive && this.graph.isEmptyDrive(drive.name)) throw new QmpError('Device needs media, but drive is empty');
          break;
        case 'virtio-queues':
          checkVirtioQueues(values);
          break;
        case 'block-sizes':
          if (model.bus === 'IDE' && !values.has('discard_granularity')) values.set('discard_granularity', 512);
          checkBlockSizes(values);
          if (model.bus === 'IDE' && values.get('discard_granularity') !== 512) throw new QmpError('discard_granularity must be 512 for ide');
          break;
        case 'attach':
          this.attach(model, id, path, drive!, values, scsiAddress);
          break;
      }
    }
    if (model.bus === 'SCSI' && !values.has('discard_granularity')) values.set('discard_granularity', Math.max(Number(values.get('logical_block_size') ?? 512), 4096));
    if (model.bus === 'IDE' && !values.has('serial')) values.set('serial', ON_BOARD_IDE_SERIAL(this.ideDeviceSlots.at(-1)!));
  }

  /** The -device properties in the order QEMU sets them (its QDict's), read and checked one by one. */
  private setProperties(model: DeviceModel, options: Record<string, string>) {
    const values = new Map<string, PropertyValue>();
    let drive: { name: string } | { node: BlockNode } | undefined;
    const keys = qdictKeyOrder(Object.keys(options).filter((key) => key !== 'driver' && key !== 'id' && key !== 'bus'));
    for (const key of keys) {
      const text = options[key]!;
      if (key === 'drive' && model.disk) {
        drive = this.resolveStartupDrive(model, text);
        continue;
      }
      const property = model.disk ? propertyOf(model, key) : undefined;
      if (!property) {
        if (UNMODELLED_DEVICE_PROPERTIES.has(key)) throw new QmpError(`property '${key}' of ${model.name} is not supported by qblockd`);
        throw new QmpError(`Property '${model.name}.${key}' not found`);
      }
      const value = property.read(key, text);
      if (key === 'bootindex') this.claimBootIndex(value as number);
      values.set(key, value);
    }
    return { values, drive };
  }

  private claimBootIndex(index: number): void {
    if (index < 0) return;
    if (this.bootIndexes.has(index)) throw new QmpError(`The bootindex ${index} has already been used`);
    this.bootIndexes.add(index);
  }

  /** scsi_qdev_realize: channel, target and LUN checked against the controller, then a free target (or LUN) found. */
  private placeScsiDisk(controller: Controller, values: Map<string, PropertyValue>): GuestDisk['scsiAddress'] {
    const limits = controller.model.scsiLimits!;
    const channel = Number(values.get('channel') ?? 0);
    const target = values.get('scsi-id') as number | undefined;
    let lun = values.get('lun') as number | undefined;
    if (channel > 0) throw new QmpError(`bad scsi channel id: ${channel}`);
    if (target !== undefined && target > limits.maxTarget) throw new QmpError(`bad scsi device id: ${target}`);
    if (lun !== undefined && lun > limits.maxLun) throw new QmpError(`bad scsi device lun: ${lun}`);
    const occupant = (t: number, l: number) =>
      this.disks.find((disk) => disk.scsiAddress?.controller === controller && disk.scsiAddress.target === t && disk.scsiAddress.lun === l);
    let address: { controller: Controller; channel: number; target: number; lun: number };
    if (target === undefined) {
      lun ??= 0;
      let candidate = 0;
      while (occupant(candidate, lun) && candidate < limits.maxTarget) candidate++;
      if (occupant(candidate, lun)) throw new QmpError('no free target');
      address = { controller, channel, target: candidate, lun };
    } else if (lun === undefined) {
      let candidate = 0;
      while (occupant(target, candidate) && candidate < limits.maxLun) candidate++;
      if (occupant(target, candidate)) throw new QmpError('no free lun');
      address = { controller, channel, target, lun: candidate };
    } else {
      const holder = occupant(target, lun);
      if (holder) throw new QmpError(`lun already used by '${holder.id ?? '(null)'}'`);
      address = { controller, channel, target, lun };
    }
    values.set('scsi-id', address.target);
    values.set('lun', address.lun);
    return address;
  }

  /**
   * Without -nodefaults, the machine's default drives, after the command line's, in QEMU's
   * order: an empty CD-ROM drive at IDE index 2 (unless taken, or a -device ide-hd or scsi-hd
   * was given), pc's empty floppy0 (unless taken), and sd0, an SD card slot no device uses.
   * Then the devices of -drive if=ide|floppy|virtio; call after every -device.
   */
  attachDrives(): void {
    const ide = this.type.ide;
    if (this.defaults && ide) {
      if (!this.diskDeviceGiven && !this.ideDrives.some((drive) => drive.index === 2)) {
        const name = `ide${Math.floor(2 / ide.unitsPerBus)}-cd${2 % ide.unitsPerBus}`;
        this.ideDrives.push({ name, index: 2, cdrom: true });
        this.graph.addEmptyDrive(name);
      }
      if (this.type.defaultFloppy && !this.floppyDrives.some((drive) => drive.index === 0)) {
        this.floppyDrives.push({ name: 'floppy0', index: 0 });
        this.graph.addEmptyDrive('floppy0');
      }
      this.graph.addEmptyDrive('sd0');
    }
    const mode = this.defaults ? 'defaults' : 'nodefaults';
    const floppy = this.type.floppy;
    const floppies = [...this.floppyDrives].sort((a, b) => a.index - b.index);
    floppies.forEach(({ name }, rank) => {
      this.attach(ON_BOARD_MODELS.floppy, undefined, `/machine/unattached/device[${floppy!.firstObject[mode] + this.objectShift + rank}]`, { name });
    });
    if (ide) {
      const firstIdeObject = ide.firstDiskObject[mode] + this.objectShift + (floppies.length > 0 ? floppy!.controllerObjects + floppies.length : 0);
      const byIndex = [...this.ideDrives].sort((a, b) => a.index - b.index);
      byIndex.forEach(({ name, index, cdrom }, rank) => {
        const properties = new Map<string, PropertyValue>([['unit', index % ide.unitsPerBus], ['serial', ON_BOARD_IDE_SERIAL(index)], ['discard_granularity', 512]]);
        const model = cdrom ? ON_BOARD_MODELS.cdrom : findDeviceModel('ide-hd')!;
        this.attach(model, undefined, `/machine/unattached/device[${firstIdeObject + rank}]`, { name }, properties);
      });
    }
    for (const { name, option } of this.pendingVirtioDrives) {
      if (this.diskOfDrive(name)) {
        const reason = `Drive '${name}' is already in use because it has been automatically connected to another device (did you need 'if=none' in the drive options?)`;
        throw new QmpError(option ? `${option}: ${reason}` : reason);
      }
      this.attach(findDeviceModel('virtio-blk-pci')!, undefined, this.devicePath(undefined), { name });
    }
    this.pendingVirtioDrives.length = 0;
  }

  /** The disk holding the named BlockBackend, if any. */
  diskOfDrive(name: string): GuestDisk | undefined {
    return this.disks.find((disk) => 'name' in disk.backend && disk.backend.name === name);
  }

  /** Disks over unnamed BlockBackends, in creation order (query-block lists them after the named ones). */
  unnamedDisks(): Array<{ disk: GuestDisk; node: BlockNode }> {
    return this.disks.flatMap((disk) => ('node' in disk.backend ? [{ disk, node: disk.backend.node }] : []));
  }

  /** qemu-io -d ID: a device id or canonical path whose device holds a BlockBackend itself; undefined when it has no medium. */
  nodeForQemuIo(qdevId: string): BlockNode | undefined {
    const disk = this.disks.find((candidate) => candidate.qdev === qdevId || candidate.qomObjects.at(-1)!.path === qdevId);
    if (disk) return this.nodeOf(disk);
    const isDevice =
      this.controllers.some((controller) => controller.id === qdevId || controller.path === qdevId) ||
      this.disks.some((candidate) => candidate.id === qdevId || candidate.qomObjects[0]!.path === qdevId);
    if (isDevice) throw new QmpError('Device does not have a block device backend');
    throw new QmpError(`Device '${qdevId}' not found`);
  }

  /** qom-get PATH PROPERTY: `drive` names the BlockBackend, else its root node; other properties their value. */
  getProperty(path: string, property: string): PropertyValue {
    const { disk } = this.findQomObject(path, property);
    if (property === 'drive') return 'name' in disk.backend ? disk.backend.name : disk.backend.node.nodeName;
    return disk.properties.get(property) ?? propertyOf(disk.model, property)!.default;
  }

  /** qom-set PATH drive NODE: the disk's BlockBackend now sits on NODE (fleecing tools do this); bootindex may change too. */
  setProperty(path: string, property: string, value: unknown): void {
    const { disk } = this.findQomObject(path, property);
    if (property !== 'drive') {
      if (!propertyOf(disk.model, property)!.settableAfterRealize) {
        const owner = disk.model.disk!.backendChild || disk.id === undefined ? 'anonymous device' : `device '${disk.id}'`;
        throw new QmpError(`Attempt to set property '${property}' on ${owner} (type '${disk.model.disk!.qomType}') after it was realized`);
      }
      if (typeof value !== 'number' || !Number.isInteger(value)) throw new QmpError(`Invalid parameter type for '${property}', expected: integer`);
      this.bootIndexes.delete(Number(disk.properties.get(property) ?? -1));
      this.claimBootIndex(value);
      disk.properties.set(property, value);
      return;
    }
    if (typeof value !== 'string') throw new QmpError(`Invalid parameter type for '${property}', expected: string`);
    const node = this.graph.findNode(value);
    if (!node) throw new QmpError(`Cannot find device='' nor node-name='${value}'`);
    if (this.nodeOf(disk) === node) return;
    this.checkNotHeld(node, backendLabel(disk));
    if ('name' in disk.backend) this.graph.replaceDeviceNode(disk.backend.name, node);
    else this.attachDisk(disk, node);
  }

  /** A snapshot put `to` over `from`: the disks made over `from` itself (a -blockdev node) now sit on `to`. */
  moveDisks(from: BlockNode, to: BlockNode): void {
    for (const disk of this.disks) if ('node' in disk.backend && disk.backend.node === from) this.attachDisk(disk, to);
  }

  private attachDisk(disk: GuestDisk, node: BlockNode): void {
    if ('node' in disk.backend) disk.backend.node.users.delete(userMark(disk));
    disk.backend = { node };
    node.users.add(userMark(disk));
  }

  /** What the disk's write-cache property makes of its BlockBackend's write cache: on, off, or the drive's own (undefined). */
  writeCacheOf(disk: GuestDisk): boolean | undefined {
    const setting = disk.properties.get('write-cache');
    return setting === 'on' ? true : setting === 'off' ? false : undefined;
  }

  private placeIdeDrive(options: Record<string, string>, ide: NonNullable<MachineType['ide']>): string {
    const index = this.driveIndex(options, this.ideDrives, 'ide', ide.unitsPerBus, (bus) => bus < ide.buses);
    const bus = Math.floor(index / ide.unitsPerBus);
    const unit = index % ide.unitsPerBus;
    const cdrom = options.media === 'cdrom';
    const name = options.id ?? `ide${bus}-${cdrom ? 'cd' : 'hd'}${unit}`;
    this.ideDrives.push({ name, index, cdrom });
    return name;
  }

  private placeFloppyDrive(options: Record<string, string>): string {
    // Floppy drives count units on one bus without limit; the controller has two.
    const index = this.driveIndex(options, this.floppyDrives, 'floppy', Infinity, (_bus, unit) => unit < 2);
    const name = options.id ?? `floppy${index}`;
    this.floppyDrives.push({ name, index });
    return name;
  }

  /** index=N, or the first free one; QEMU's refusals for one taken or beyond the interface's buses. */
  private driveIndex(
    options: Record<string, string>,
    placed: ReadonlyArray<{ index: number }>,
    iface: string,
    unitsPerBus: number,
    supported: (bus: number, unit: number) => boolean,
  ): number {
    const taken = new Set(placed.map((drive) => drive.index));
    let index = options.index === undefined ? 0 : Number(options.index);
    if (options.index === undefined) while (taken.has(index)) index++;
    const bus = Math.floor(index / unitsPerBus);
    const unit = index % unitsPerBus;
    if (!supported(bus, unit)) throw new QmpError(`machine type does not support if=${iface},bus=${bus},unit=${unit}`);
    if (taken.has(index)) throw new QmpError(`drive with bus=${bus}, unit=${unit} (index=${index}) exists`);
    return index;
  }

  /** bus=NAME, or the bus QEMU's automatic placement finds for the model: which IDE bus or SCSI controller. */
  private findBus(model: DeviceModel, busName: string | undefined): { ideBus?: number; controller?: Controller } {
    if (busName === undefined) {
      const scsiControllers = this.controllers.filter((controller) => controller.model.provides === 'SCSI');
      const available: Record<BusKind, boolean> = {
        PCI: this.type.pciBus !== undefined,
        IDE: this.type.ide !== undefined,
        SCSI: scsiControllers.length > 0,
        floppy: this.type.floppy !== undefined,
      };
      if (!available[model.bus]) throw new QmpError(`No '${model.bus}' bus found for device '${model.name}'`);
      // QEMU's bus search meets the controllers' buses last-created first, and IDE buses never
      // count as full: without bus=, an IDE disk always goes to the last on-board bus.
      if (model.bus === 'IDE') return { ideBus: this.type.ide!.buses - 1 };
      return { controller: scsiControllers.at(-1) };
    }
    const bus = this.namedBus(busName);
    if (!bus) throw new QmpError(`Bus '${busName}' not found`);
    if (bus.kind !== model.bus) throw new QmpError(`Device '${model.name}' can't go on ${bus.kind} bus`);
    return bus;
  }

  /** The buses by name: the machine's PCI root and IDE buses, and each SCSI controller's. */
  private namedBus(name: string): { kind: BusKind; ideBus?: number; controller?: Controller } | undefined {
    if (name === this.type.pciBus) return { kind: 'PCI' };
    const ide = /^ide\.([0-9]+)$/.exec(name);
    if (ide && this.type.ide && Number(ide[1]) < this.type.ide.buses) return { kind: 'IDE', ideBus: Number(ide[1]) };
    const controller = this.controllers.find((candidate) => candidate.busName === name);
    return controller ? { kind: controller.model.provides!, controller } : undefined;
  }

  /** An IDE disk takes the unit asked for, else its bus's master unit if free, else the slave one. */
  private takeIdeUnit(bus: number, requested: number | undefined): number {
    const ide = this.type.ide!;
    const taken = new Set([...this.ideDrives.map((drive) => drive.index), ...this.ideDeviceSlots]);
    const unit = requested ?? (taken.has(bus * ide.unitsPerBus) ? 1 : 0);
    if (unit >= ide.unitsPerBus) throw new QmpError(`Can't create IDE unit ${unit}, bus supports only ${ide.unitsPerBus} units`);
    const slot = bus * ide.unitsPerBus + unit;
    if (taken.has(slot)) throw new QmpError(`IDE unit ${unit} is in use`);
    this.ideDeviceSlots.push(slot);
    return unit;
  }

  private devicePath(id: string | undefined): string {
    return id !== undefined ? `/machine/peripheral/${id}` : `/machine/peripheral-anon/device[${this.anonymousDevices++}]`;
  }

  /** `drive=X` at start: a -drive BlockBackend by name first, else a node (put under a new unnamed BlockBackend by attach). */
  private resolveStartupDrive(model: DeviceModel, value: string): { name: string } | { node: BlockNode } {
    if (this.graph.deviceNode(value) || this.graph.isEmptyDrive(value)) {
      if (this.ideDrives.some((drive) => drive.name === value)) {
        throw new QmpError(
          `Drive '${value}' is already in use because it has been automatically connected to another device (did you need 'if=none' in the drive options?)`,
        );
      }
      if (this.diskOfDrive(value)) throw new QmpError(`Drive '${value}' is already in use by another device`);
      return { name: value };
    }
    const node = this.graph.findNode(value);
    if (!node) throw new QmpError(`Property '${model.disk!.qomType}.drive' can't find value '${value}'`);
    return { node };
  }

  private attach(
    model: DeviceModel,
    id: string | undefined,
    path: string,
    target: { name: string } | { node: BlockNode },
    properties = new Map<string, PropertyValue>(),
    scsiAddress?: GuestDisk['scsiAddress'],
  ): void {
    const backendChild = model.disk!.backendChild;
    const ownerPath = backendChild ? `${path}/${backendChild}` : path;
    const qomObjects = backendChild
      ? [{ path, type: model.name }, { path: ownerPath, type: model.disk!.qomType }]
      : [{ path, type: model.disk!.qomType }];
    const qdev = !backendChild && id !== undefined ? id : ownerPath;
    if ('node' in target) {
      this.checkNotHeld(target.node, qdev);
      target.node.users.add(userMark({ qdev }));
    }
    const backend = 'node' in target ? this.graph.attachUnnamedBackend(target.node) : target;
    this.disks.push({ model, id, qdev, qomObjects, backend, properties, ...(scsiAddress ? { scsiAddress } : {}) });
  }

  /** A disk writes and shares no writes: a node already under another disk refuses a second one. */
  private checkNotHeld(node: BlockNode, newcomer: string): void {
    const holder = this.holderOf(node);
    if (holder) throw new QmpError(permissionConflict(node.nodeName, 'write', asRoot(`block device '${backendLabel(holder)}'`), asRoot(`block device '${newcomer}'`)));
  }

  /** The refusal a new writer on `node` (qemu-io's own BlockBackend) meets from a disk holding it, if any. */
  conflictWithWriter(node: BlockNode): string | undefined {
    const holder = this.holderOf(node);
    return holder && permissionConflict(node.nodeName, 'write', UNNAMED_BACKEND, asRoot(`block device '${backendLabel(holder)}'`));
  }

  /** A guest disk sits on the node (it writes there unless the node is read-only). */
  hasDiskOn(node: BlockNode): boolean {
    return this.holderOf(node) !== undefined;
  }

  private holderOf(node: BlockNode): GuestDisk | undefined {
    return this.disks.find((disk) => this.nodeOf(disk) === node);
  }

  /** The root node under the disk; none for a drive without a medium. */
  private nodeOf(disk: GuestDisk): BlockNode | undefined {
    return 'node' in disk.backend ? disk.backend.node : this.graph.deviceNode(disk.backend.name);
  }

  /** A QOM path, absolute or an unambiguous partial one, naming a disk object; then its property. */
  private findQomObject(path: string, property: string): { disk: GuestDisk; type: string } {
    const candidates = this.qomObjects().filter((object) =>
      path.startsWith('/') ? object.path === path : object.path.endsWith(`/${path}`),
    );
    if (candidates.length !== 1) throw new QmpError(`Device '${path}' not found`, 'DeviceNotFound');
    const { type, disk } = candidates[0]!;
    if (!disk || (property !== 'drive' && !propertyOf(disk.model, property))) throw new QmpError(`Property '${type}.${property}' not found`);
    return { disk, type };
  }

  private qomObjects(): Array<{ path: string; type: string; disk?: GuestDisk }> {
    return [
      ...this.controllers.map((controller) => ({ path: controller.path, type: controller.model.name })),
      ...this.disks.flatMap((disk) => disk.qomObjects.map((object) => ({ ...object, disk }))),
    ];
  }
}

/** A guest disk's BlockBackend: the root user of its node. */
function asRoot(name: string): NodeUser {
  return { name, role: 'root' };
}

/** How QEMU names a BlockBackend in permission errors: its name, else the attached device's id or path. */
function backendLabel(disk: GuestDisk): string {
  return 'name' in disk.backend ? disk.backend.name : disk.qdev;
}

function userMark(disk: Pick<GuestDisk, 'qdev'>): string {
  return `device ${disk.qdev}`;
}

/** The model's property NAME (its own or a disk's common one), if qblockd models it. */
function propertyOf(model: DeviceModel, name: string): DeviceProperty | undefined {
  return MODEL_PROPERTIES[model.name]?.[name] ?? DISK_PROPERTIES[name];
}

type RealizeStep = 'ide-unit' | 'scsi-address' | 'drive' | 'virtio-queues' | 'block-sizes' | 'attach';

/** Each disk model's realize checks in QEMU 7.2's order (bus placement, then the device's own). */
const REALIZE_STEPS: Readonly<Record<string, readonly RealizeStep[]>> = {
  'virtio-blk-pci': ['drive', 'virtio-queues', 'attach', 'block-sizes'],
  'scsi-hd': ['scsi-address', 'drive', 'block-sizes', 'attach'],
  'ide-hd': ['ide-unit', 'drive', 'block-sizes', 'attach'],
};
