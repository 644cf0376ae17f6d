import { QmpError } from '../qmp/errors.ts';
import { SchemaDefinitions } from './definitions.ts';
import { buildIntrospection } from './introspection.ts';
import { InputVisitor, type InputMode } from './visitor.ts';

export interface Schema {
  commandNames(): string[];
  hasCommand(name: string): boolean;
  /** Checks a command's `arguments` as QEMU's QMP dispatcher would; throws QmpError with QEMU's text. */
  validateCommandArguments(command: string, args: Record<string, unknown> | undefined): Record<string, unknown>;
  /** Checks (and in keyval mode converts) a value of a named type, e.g. a -blockdev's BlockdevOptions. */
  validateType(typeName: string, value: unknown, mode: InputMode): unknown;
  /** query-qmp-schema's SchemaInfo list. */
  introspect(): unknown[];
}

let cached: Schema | undefined;

/** The schema from schema/*.json, compiled once per process. */
export function loadSchema(): Schema {
  cached ??= createSchema(new SchemaDefinitions());
  return cached;
}

function createSchema(definitions: SchemaDefinitions): Schema {
  const visitors = { qmp: new InputVisitor(definitions, 'qmp'), keyval: new InputVisitor(definitions, 'keyval') };
  let introspection: unknown[] | undefined;
  const names = [...definitions.commands.keys()];
  return {
    commandNames: () => names,
    hasCommand: (name) => definitions.commands.has(name),
    validateCommandArguments(command, args) {
      const definition = definitions.commands.get(command);
      if (!definition) throw new QmpError(`The command ${command} has not been found`, 'CommandNotFound');
      return visitors.qmp.visit(definition.argType, args ?? {}, [], null) as Record<string, unknown>;
    },
    validateType: (typeName, value, mode) => visitors[mode].visit(typeName, value, [], null),
    introspect: () => (introspection ??= buildIntrospection(definitions)),
  };
}
