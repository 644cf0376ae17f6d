import type { SchemaDefinitions, TypeRef } from './definitions.ts';
import type { JSONType, SchemaInfo, SchemaInfoObjectMember } from './generated/qapi-types.ts';

/**
 * query-qmp-schema's SchemaInfo list: commands and events by name, every
 * other type behind an opaque number (builtins keep their names), numbered in
 * the order they are first reached, as QEMU masks them. Without `withQblockd`,
 * qblockd's own commands and events (and the types only they use) are left out.
 */
export function buildIntrospection(schema: SchemaDefinitions, withQblockd: boolean): SchemaInfo[] {
  const entries: SchemaInfo[] = [];
  const names = new Map<string, string>();
  const pending: string[] = [];

  const nameOf = (ref: TypeRef): string => {
    if (Array.isArray(ref)) {
      const element = nameOf(ref[0]);
      const arrayName = `[${element}]`;
      if (!names.has(arrayName)) {
        names.set(arrayName, arrayName);
        entries.push({ name: arrayName, 'meta-type': 'array', 'element-type': element });
      }
      return arrayName;
    }
    const definition = schema.type(ref);
    if (definition.kind === 'builtin') {
      const builtinName = definition.jsonType === 'int' ? 'int' : definition.name;
      if (!names.has(builtinName)) {
        names.set(builtinName, builtinName);
        entries.push({ name: builtinName, 'meta-type': 'builtin', 'json-type': definition.jsonType as JSONType });
      }
      return builtinName;
    }
    let masked = names.get(ref);
    if (masked === undefined) {
      masked = String(names.size - countBuiltinsAndArrays(names));
      names.set(ref, masked);
      pending.push(ref);
    }
    return masked;
  };

  for (const command of schema.commands.values()) {
    if (command.qblockdOnly && !withQblockd) continue;
    const entry: SchemaInfo = { name: command.name, 'meta-type': 'command', 'arg-type': nameOf(command.argType), 'ret-type': nameOf(command.returns ?? 'q_empty') };
    if (command.features.length > 0) entry.features = [...command.features];
    entries.push(entry);
  }
  for (const event of schema.events.values()) {
    if (event.qblockdOnly && !withQblockd) continue;
    const entry: SchemaInfo = { name: event.name, 'meta-type': 'event', 'arg-type': nameOf(event.argType ?? 'q_empty') };
    if (event.features.length > 0) entry.features = [...event.features];
    entries.push(entry);
  }
  while (pending.length > 0) {
    const ref = pending.shift()!;
    const definition = schema.type(ref);
    const name = names.get(ref)!;
    switch (definition.kind) {
      case 'enum':
        entries.push({
          name,
          'meta-type': 'enum',
          members: definition.values.map((value) => ({ name: value })),
          values: definition.values,
        });
        break;
      case 'alternate':
        entries.push({ name, 'meta-type': 'alternate', members: definition.branches.map((b) => ({ type: nameOf(b.type) })) });
        break;
      case 'struct':
      case 'union': {
        const members = definition.members.map((member) => {
          const info: SchemaInfoObjectMember = { name: member.name, type: nameOf(member.type) };
          if (member.optional) info.default = null;
          if (member.features) info.features = [...member.features];
          return info;
        });
        const entry: SchemaInfo = { name, 'meta-type': 'object', members };
        if (definition.kind === 'struct' && definition.features) entry.features = [...definition.features];
        if (definition.kind === 'union') {
          entry.tag = definition.discriminator;
          entry.variants = Object.entries(definition.branches).map(([value, type]) => ({ case: value, type: nameOf(type) }));
        }
        entries.push(entry);
        break;
      }
      default:
        break;
    }
  }
  return entries;
}

function countBuiltinsAndArrays(names: Map<string, string>): number {
  let count = 0;
  for (const [key, value] of names) if (key === value) count++;
  return count;
}
