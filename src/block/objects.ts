import { QmpError } from '../qmp/errors.ts';
import type { ObjectOptions } from '../schema/generated/qapi-types.ts';
import { checkConfig, configFromProperties } from './throttle/config.ts';
import { ThrottleGroup } from './throttle/group.ts';
import { isWellFormedId } from '../qmp/well-formed-id.ts';

/**
 * The user-creatable objects of object-add (QEMU's /objects container). Only
 * throttle-group is built; every other type of QEMU's schema is refused as
 * QEMU refuses a type it does not know.
 */
export class ObjectRegistry {
  private readonly objects = new Map<string, ThrottleGroup>();

  add(options: ObjectOptions): void {
    if (options['qom-type'] !== 'throttle-group') throw new QmpError(`invalid object type: ${options['qom-type']}`);
    if (!isWellFormedId(options.id)) throw new QmpError("Parameter 'id' expects an identifier");
    const { 'qom-type': _type, id, ...properties } = options;
    const config = configFromProperties(properties);
    if (this.objects.has(id)) throw new QmpError(`attempt to add duplicate property '${id}' to object (type 'container')`);
    checkConfig(config);
    this.objects.set(id, new ThrottleGroup(id, config));
  }

  remove(id: string): void {
    const object = this.objects.get(id);
    if (!object) throw new QmpError(`object '${id}' not found`);
    if (object.users > 0) throw new QmpError(`object '${id}' is in use, can not be deleted`);
    this.objects.delete(id);
  }

  /** The group a throttle node names, as blockdev-add looks it up. */
  throttleGroupFor(id: string): ThrottleGroup {
    const group = this.objects.get(id);
    if (!group) throw new QmpError(`Throttle group '${id}' does not exist`);
    return group;
  }
}
