import control from '../../schema/control.json' with { type: 'json' };
import blockCore from '../../schema/block-core.json' with { type: 'json' };
import imageInfo from '../../schema/image-info.json' with { type: 'json' };
import transaction from '../../schema/transaction.json' with { type: 'json' };
import blockExport from '../../schema/block-export.json' with { type: 'json' };
import job from '../../schema/job.json' with { type: 'json' };
import blockCreate from '../../schema/block-create.json' with { type: 'json' };
import qom from '../../schema/qom.json' with { type: 'json' };
import qblockd from '../../schema/qblockd.json' with { type: 'json' };

/** A type reference: a type name, or a one-element array for a list of that type. */
export type TypeRef = string | [string];

export interface Member {
  name: string;
  optional: boolean;
  type: TypeRef;
  /** Special features of the member (unstable, deprecated), reported by query-qmp-schema. */
  features?: string[];
}

export type TypeDef =
  | { kind: 'builtin'; name: string; jsonType: string }
  | { kind: 'enum'; name: string; values: string[] }
  | { kind: 'struct'; name: string; members: Member[]; features?: string[] }
  | { kind: 'union'; name: string; members: Member[]; discriminator: string; branches: Record<string, string> }
  | { kind: 'alternate'; name: string; branches: Array<{ name: string; type: string }> };

export interface CommandDef {
  name: string;
  /** A struct or union name; commands without arguments get the empty struct. */
  argType: string;
  returns: TypeRef | null;
  /** As query-qmp-schema reports them ("unstable" on x- commands, ...). */
  features: string[];
  /** Declared in schema/qblockd.json: QEMU has no such command. */
  qblockdOnly: boolean;
}

export interface EventDef {
  name: string;
  argType: string | null;
  features: string[];
  qblockdOnly: boolean;
}

/** The schema files, in load order. Imported, so a bundled daemon carries them. */
export const SCHEMA_FILES: Array<{ file: string; entries: unknown[]; qblockdOnly?: boolean }> = [
  { file: 'control.json', entries: control },
  { file: 'block-core.json', entries: blockCore },
  { file: 'image-info.json', entries: imageInfo },
  { file: 'transaction.json', entries: transaction },
  { file: 'block-export.json', entries: blockExport },
  { file: 'job.json', entries: job },
  { file: 'block-create.json', entries: blockCreate },
  { file: 'qom.json', entries: qom },
  { file: 'qblockd.json', entries: qblockd, qblockdOnly: true },
];

/** Builtins and their JSON types, as QEMU's introspection reports them. */
const BUILTINS: Record<string, string> = {
  str: 'string', bool: 'boolean', number: 'number', any: 'value', null: 'null', size: 'int',
  int: 'int', int8: 'int', int16: 'int', int32: 'int', int64: 'int',
  uint8: 'int', uint16: 'int', uint32: 'int', uint64: 'int',
};

const EMPTY_STRUCT = 'q_empty';

/** The keyword that names what an entry defines; schema/meta.json describes the full shape (checked by the tests). */
const ENTRY_KEYWORDS = ['enum', 'struct', 'union', 'alternate', 'command', 'event'];

export class SchemaDefinitions {
  readonly types = new Map<string, TypeDef>();
  readonly commands = new Map<string, CommandDef>();
  readonly events = new Map<string, EventDef>();

  constructor() {
    for (const [name, jsonType] of Object.entries(BUILTINS)) this.types.set(name, { kind: 'builtin', name, jsonType });
    this.types.set(EMPTY_STRUCT, { kind: 'struct', name: EMPTY_STRUCT, members: [] });
    const pendingStructs: Array<{ name: string; base?: string; data: Record<string, unknown>; features?: string[] }> = [];
    const seen = new Set<string>();
    for (const { file, entries, qblockdOnly = false } of SCHEMA_FILES) {
      for (const entry of entries as Array<Record<string, any>>) {
        const keywords = ENTRY_KEYWORDS.filter((keyword) => keyword in entry);
        if (keywords.length !== 1) throw new Error(`schema/${file}: malformed entry ${JSON.stringify(entry).slice(0, 80)}`);
        const defined = `${keywords[0] === 'command' || keywords[0] === 'event' ? keywords[0] : 'type'} ${entry[keywords[0]!]}`;
        if (seen.has(defined)) throw new Error(`schema/${file}: ${defined} is defined twice`);
        seen.add(defined);
        if (entry.enum) this.types.set(entry.enum, { kind: 'enum', name: entry.enum, values: entry.data });
        else if (entry.struct) pendingStructs.push({ name: entry.struct, base: entry.base, data: entry.data, features: entry.features });
        else if (entry.union) this.addUnion(entry);
        else if (entry.alternate) {
          const branches = Object.entries(entry.data as Record<string, string>).map(([name, type]) => ({ name, type }));
          this.types.set(entry.alternate, { kind: 'alternate', name: entry.alternate, branches });
        } else if (entry.command) this.addCommand(entry, qblockdOnly);
        else if (entry.event) {
          const argType = entry.data ? this.inlineStruct(`q_obj_${entry.event}-arg`, entry.data) : null;
          this.events.set(entry.event, { name: entry.event, argType, features: entry.features ?? [], qblockdOnly });
        }
      }
    }
    for (const { name, features } of pendingStructs) this.types.set(name, { kind: 'struct', name, members: [], ...(features ? { features } : {}) });
    for (const struct of pendingStructs) {
      (this.types.get(struct.name) as { members: Member[] }).members.push(...this.membersOf(struct.data));
    }
    for (const struct of pendingStructs) this.resolveBase(struct.name, struct.base);
    this.assertResolvable();
  }

  type(name: string): TypeDef {
    const definition = this.types.get(name);
    if (!definition) throw new Error(`schema: unknown type '${name}'`);
    return definition;
  }

  private addUnion(entry: Record<string, any>): void {
    const base = typeof entry.base === 'string' ? entry.base : this.inlineStruct(`q_obj_${entry.union}-base`, entry.base);
    this.types.set(entry.union, {
      kind: 'union',
      name: entry.union,
      members: [{ name: `@base:${base}`, optional: false, type: base }],
      discriminator: entry.discriminator,
      branches: entry.data,
    });
  }

  private addCommand(entry: Record<string, any>, qblockdOnly: boolean): void {
    let argType = EMPTY_STRUCT;
    if (typeof entry.data === 'string') argType = entry.data;
    else if (entry.data) argType = this.inlineStruct(`q_obj_${entry.command}-arg`, entry.data);
    this.commands.set(entry.command, { name: entry.command, argType, returns: entry.returns ?? null, features: entry.features ?? [], qblockdOnly });
  }

  private inlineStruct(name: string, data: Record<string, unknown>): string {
    this.types.set(name, { kind: 'struct', name, members: this.membersOf(data) });
    return name;
  }

  private membersOf(data: Record<string, unknown>): Member[] {
    return Object.entries(data).map(([key, value]) => {
      const member: Member = { name: key.replace(/^\*/, ''), optional: key.startsWith('*'), type: value as TypeRef };
      if (typeof value === 'object' && !Array.isArray(value)) {
        const { type, features } = value as { type: TypeRef; features: string[] };
        member.type = type;
        member.features = features;
      }
      return member;
    });
  }

  /** Base members come first, recursively. */
  private resolveBase(name: string, base: string | undefined): void {
    if (!base) return;
    const struct = this.types.get(name) as { members: Member[] };
    const baseDef = this.type(base);
    if (baseDef.kind !== 'struct') throw new Error(`schema: base of ${name} is not a struct`);
    struct.members.unshift(...baseDef.members.filter((m) => !struct.members.some((own) => own.name === m.name)));
  }

  /** Union placeholders point at their base struct; replace them by its members. */
  private assertResolvable(): void {
    for (const definition of this.types.values()) {
      if (definition.kind === 'union') {
        const base = this.type(definition.members[0]!.type as string) as { members: Member[] };
        definition.members = [...base.members];
      }
    }
    const check = (ref: TypeRef) => this.type(Array.isArray(ref) ? ref[0] : ref);
    for (const definition of this.types.values()) {
      if (definition.kind === 'struct' || definition.kind === 'union') definition.members.forEach((m) => check(m.type));
      if (definition.kind === 'union') Object.values(definition.branches).forEach(check);
      if (definition.kind === 'alternate') definition.branches.forEach((b) => check(b.type));
    }
    for (const command of this.commands.values()) {
      check(command.argType);
      if (command.returns) check(command.returns);
    }
  }
}
