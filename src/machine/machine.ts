import { permissionConflict, UNNAMED_BACKEND, type NodeUser } from '../block/permission-conflict.ts';
import type { BlockGraph } from '../block/graph.ts';
import type { BlockNode } from '../block/node.ts';
import { QmpError } from '../qmp/errors.ts';
import { findDeviceModel, type BusKind, type DeviceModel } from './device-models.ts';
import { MACHINE_TYPES, type MachineType } from './machine-types.ts';

/** The BlockBackend a guest disk holds: a named -drive one (found in the graph) or an unnamed one over a node. */
type Backend = { name: string } | { node: BlockNode };

/** A guest disk: where a BlockBackend is attached, and the names QEMU gives that place. */
export interface GuestDisk {
  readonly model: DeviceModel;
  readonly id?: string;
  /** What query-block shows as `qdev`: the device id, else the canonical QOM path of the backend's owner. */
  readonly qdev: string;
  /** QOM objects answering the `drive` property, by canonical path, with their QOM type. */
  readonly qomObjects: ReadonlyArray<{ path: string; type: string }>;
  backend: Backend;
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
const DEVICE_KEYS = new Set(['driver', 'id', 'drive', 'bus']);
/** Device properties QEMU has and qblockd does not model: refused plainly rather than called unknown. */
const UNMODELLED_DEVICE_PROPERTIES = new Set([
  'unit', 'scsi-id', 'lun', 'channel', 'addr', 'multifunction', 'bootindex', 'serial', 'wwn', 'share-rw',
  'write-cache', 'werror', 'rerror', 'iothread', 'num-queues', 'queue-size', 'logical_block_size',
  'physical_block_size', 'min_io_size', 'opt_io_size', 'discard_granularity', 'cyls', 'heads', 'secs',
  'rotation_rate', 'model', 'vendor', 'product', 'ver', 'romfile', 'rombar',
]);
const IDENTIFIER = /^[A-Za-z][A-Za-z0-9._-]*$/;

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
  /** -drive if=virtio backends: their devices are created after every -device, as in QEMU. */
  private readonly pendingVirtioDrives: Array<{ name: string; option?: string }> = [];
  private readonly ideDrives: Array<{ name: string; index: number }> = [];
  private anonymousDevices = 0;
  /** Drive indexes (bus x unitsPerBus + unit) taken by -device ide-hd. */
  private readonly ideDeviceSlots: number[] = [];
  private virtioDrives = 0;

  constructor(
    private readonly graph: BlockGraph,
    spec: { type?: string; accel?: string; properties?: Record<string, string> } | undefined,
  ) {
    const type = MACHINE_TYPES[spec?.type ?? 'none'];
    if (!type) throw new QmpError('unsupported machine type\nUse -machine help to list supported machines');
    this.type = type;
    this.accel = spec?.accel ?? 'tcg';
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
    if (iface === 'virtio' && this.type.pciBus !== undefined) {
      const name = options.id ?? `virtio${this.virtioDrives}`;
      this.virtioDrives++;
      this.pendingVirtioDrives.push({ name, option });
      return name;
    }
    throw new QmpError(`machine type does not support if=${iface},bus=0,unit=0`);
  }

  /** -device DRIVER,...: a controller or a disk holding a -drive BlockBackend or a node. */
  addDevice(options: Record<string, string>): void {
    const model = options.driver === undefined ? undefined : findDeviceModel(options.driver);
    if (!model) throw new QmpError(`'${options.driver ?? ''}' is not a valid device model name`);
    const id = options.id;
    if (id !== undefined) {
      if (!IDENTIFIER.test(id)) {
        throw new QmpError("Parameter 'id' expects an identifier\nIdentifiers consist of letters, digits, '-', '.', '_', starting with a letter.");
      }
      if (this.deviceIds.has(id)) throw new QmpError(`Duplicate ID '${id}' for device`);
    }
    const unknown = Object.keys(options).find((key) => !DEVICE_KEYS.has(key) || (key === 'drive' && !model.disk));
    if (unknown !== undefined && UNMODELLED_DEVICE_PROPERTIES.has(unknown)) {
      throw new QmpError(`property '${unknown}' of ${model.name} is not supported by qblockd`);
    }
    if (unknown !== undefined) throw new QmpError(`Property '${model.name}.${unknown}' not found`);
    this.checkBus(model, options.bus);
    if (model.disk && options.drive === undefined) throw new QmpError('drive property not set');
    const path = this.devicePath(id);
    if (id !== undefined) this.deviceIds.add(id);
    if (model.provides) {
      const anonymous = this.controllers.filter((controller) => controller.id === undefined).length;
      this.controllers.push({ model, id, path, busName: id !== undefined ? `${id}.0` : `scsi.${anonymous}` });
      return;
    }
    const backend = this.resolveStartupDrive(model, options.drive!);
    this.attach(model, id, path, backend);
  }

  /** Creates the disks -drive if=ide|virtio asked for; call after every -device. */
  attachDrives(): void {
    const ide = this.type.ide;
    if (ide) {
      const byIndex = [...this.ideDrives].sort((a, b) => a.index - b.index);
      byIndex.forEach(({ name }, rank) => {
        this.attach(findDeviceModel('ide-hd')!, undefined, `/machine/unattached/device[${ide.firstDiskObject + rank}]`, { name });
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

  /** qemu-io -d ID: a device id or canonical path whose device holds a BlockBackend itself. */
  nodeForQemuIo(qdevId: string): BlockNode {
    const disk = this.disks.find((candidate) => candidate.qdev === qdevId || candidate.qomObjects.at(-1)!.path === qdevId);
    if (disk) return this.nodeOf(disk);
    const isDevice =
      this.controllers.some((controller) => controller.id === qdevId || controller.path === qdevId) ||
      this.disks.some((candidate) => candidate.id === qdevId || candidate.qomObjects[0]!.path === qdevId);
    if (isDevice) throw new QmpError('Device does not have a block device backend');
    throw new QmpError(`Device '${qdevId}' not found`);
  }

  /** qom-get PATH drive: the BlockBackend's name, else its root node's name. */
  getDriveProperty(path: string, property: string): string {
    const { disk } = this.findQomObject(path, property);
    return 'name' in disk.backend ? disk.backend.name : disk.backend.node.nodeName;
  }

  /** qom-set PATH drive NODE: the disk's BlockBackend now sits on NODE (fleecing tools do this). */
  setDriveProperty(path: string, property: string, value: unknown): void {
    const { disk } = this.findQomObject(path, property);
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

  private placeIdeDrive(options: Record<string, string>, ide: NonNullable<MachineType['ide']>): string {
    const taken = new Set(this.ideDrives.map((drive) => drive.index));
    let index = options.index === undefined ? 0 : Number(options.index);
    if (options.index === undefined) while (taken.has(index)) index++;
    const bus = Math.floor(index / ide.unitsPerBus);
    const unit = index % ide.unitsPerBus;
    if (bus >= ide.buses) throw new QmpError(`machine type does not support if=ide,bus=${bus},unit=${unit}`);
    const name = options.id ?? `ide${bus}-hd${unit}`;
    this.ideDrives.push({ name, index });
    return name;
  }

  /** bus=NAME, or the bus QEMU's automatic placement finds for the model. */
  private checkBus(model: DeviceModel, busName: string | undefined): void {
    if (busName === undefined) {
      const available: Record<BusKind, boolean> = {
        PCI: this.type.pciBus !== undefined,
        IDE: this.type.ide !== undefined,
        SCSI: this.controllers.some((controller) => controller.model.provides === 'SCSI'),
      };
      if (!available[model.bus]) throw new QmpError(`No '${model.bus}' bus found for device '${model.name}'`);
      // QEMU's bus search meets the controller's buses last-created first, and IDE buses never
      // count as full: without bus=, an IDE disk always goes to the last on-board bus.
      if (model.bus === 'IDE') this.takeIdeUnit(this.type.ide!.buses - 1);
      return;
    }
    const bus = this.namedBus(busName);
    if (!bus) throw new QmpError(`Bus '${busName}' not found`);
    if (bus.kind !== model.bus) throw new QmpError(`Device '${model.name}' can't go on ${bus.kind} bus`);
    if (bus.ideBus !== undefined) this.takeIdeUnit(bus.ideBus);
  }

  /** The buses by name: the machine's PCI root and IDE buses, and each SCSI controller's. */
  private namedBus(name: string): { kind: BusKind; ideBus?: number } | undefined {
    if (name === this.type.pciBus) return { kind: 'PCI' };
    const ide = /^ide\.([0-9]+)$/.exec(name);
    if (ide && this.type.ide && Number(ide[1]) < this.type.ide.buses) return { kind: 'IDE', ideBus: Number(ide[1]) };
    const controller = this.controllers.find((candidate) => candidate.busName === name);
    return controller ? { kind: controller.model.provides! } : undefined;
  }

  /** An IDE disk takes its bus's master unit if free, else the slave one. */
  private takeIdeUnit(bus: number): void {
    const ide = this.type.ide!;
    const taken = new Set([...this.ideDrives.map((drive) => drive.index), ...this.ideDeviceSlots]);
    const unit = taken.has(bus * ide.unitsPerBus) ? 1 : 0;
    if (unit >= ide.unitsPerBus) throw new QmpError(`Can't create IDE unit ${unit}, bus supports only ${ide.unitsPerBus} units`);
    const slot = bus * ide.unitsPerBus + unit;
    if (taken.has(slot)) throw new QmpError(`IDE unit ${unit} is in use`);
    this.ideDeviceSlots.push(slot);
  }

  private devicePath(id: string | undefined): string {
    return id !== undefined ? `/machine/peripheral/${id}` : `/machine/peripheral-anon/device[${this.anonymousDevices++}]`;
  }

  /** `drive=X` at start: a -drive BlockBackend by name first, else a node under a new unnamed one. */
  private resolveStartupDrive(model: DeviceModel, value: string): Backend {
    if (this.graph.deviceNode(value)) {
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

  private attach(model: DeviceModel, id: string | undefined, path: string, backend: Backend): void {
    const backendChild = model.disk!.backendChild;
    const ownerPath = backendChild ? `${path}/${backendChild}` : path;
    const qomObjects = backendChild
      ? [{ path, type: model.name }, { path: ownerPath, type: model.disk!.qomType }]
      : [{ path, type: model.disk!.qomType }];
    const disk: GuestDisk = { model, id, qdev: !backendChild && id !== undefined ? id : ownerPath, qomObjects, backend };
    if ('node' in backend) {
      this.checkNotHeld(backend.node, backendLabel(disk));
      backend.node.users.add(userMark(disk));
    }
    this.disks.push(disk);
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

  private holderOf(node: BlockNode): GuestDisk | undefined {
    return this.disks.find((disk) => this.nodeOf(disk) === node);
  }

  private nodeOf(disk: GuestDisk): BlockNode {
    return 'node' in disk.backend ? disk.backend.node : this.graph.deviceNode(disk.backend.name)!;
  }

  /** A QOM path, absolute or an unambiguous partial one, naming a disk object; then its property. */
  private findQomObject(path: string, property: string): { disk: GuestDisk; type: string } {
    const candidates = this.qomObjects().filter((object) =>
      path.startsWith('/') ? object.path === path : object.path.endsWith(`/${path}`),
    );
    if (candidates.length !== 1) throw new QmpError(`Device '${path}' not found`, 'DeviceNotFound');
    const { type, disk } = candidates[0]!;
    if (property !== 'drive' || !disk) throw new QmpError(`Property '${type}.${property}' not found`);
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

function userMark(disk: GuestDisk): string {
  return `device ${disk.qdev}`;
}
