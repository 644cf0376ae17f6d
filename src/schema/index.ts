import { QmpError } from '../qmp/errors.ts';
import { SchemaDefinitions } from './definitions.ts';
import { buildIntrospection } from './introspection.ts';
import { InputVisitor, type InputMode } from './visitor.ts';
import type { CommandArguments, CommandName, QapiTypes, SchemaInfo } from './generated/qapi-types.ts';

/** What a client is shown: QEMU's commands and events only, or qblockd's own x- ones too. */
export type SchemaView = 'qemu' | 'with-qblockd';

export interface Schema {
  commandNames(view: SchemaView): CommandName[];
  hasCommand(name: string): name is CommandName;
  /** Checks a command's `arguments` as QEMU's QMP dispatcher would; throws QmpError with QEMU's text. */
  validateCommandArguments<C extends CommandName>(command: C, args: Record<string, unknown> | undefined): CommandArguments[C];
  /** Checks (and in keyval mode converts) a value of a named type, e.g. a -blockdev's BlockdevOptions. */
  validateType<T extends keyof QapiTypes>(typeName: T, value: unknown, mode: InputMode): QapiTypes[T];
  /** query-qmp-schema's SchemaInfo list. */
  introspect(view: SchemaView): SchemaInfo[];
}

let cached: Schema | undefined;

/** The schema from schema/*.json, compiled once per process. */
export function loadSchema(): Schema {
  cached ??= createSchema(new SchemaDefinitions());
  return cached;
}

function createSchema(definitions: SchemaDefinitions): Schema {
  const visitors = { qmp: new InputVisitor(definitions, 'qmp'), keyval: new InputVisitor(definitions, 'keyval'), opts: new InputVisitor(definitions, 'opts') };
  const introspection = new Map<SchemaView, SchemaInfo[]>();
  const commands = [...definitions.commands.values()];
  const names: Record<SchemaView, CommandName[]> = {
    qemu: commands.filter((command) => !command.qblockdOnly).map((command) => command.name as CommandName),
    'with-qblockd': commands.map((command) => command.name as CommandName),
  };
  // The visitor checked the value against the very definitions the generated types come from
  // (test/unit/schema/generated-types.test.ts keeps them in step), so it has the named type.
  return {
    commandNames: (view) => names[view],
    hasCommand: (name): name is CommandName => definitions.commands.has(name),
    validateCommandArguments<C extends CommandName>(command: C, args: Record<string, unknown> | undefined) {
      const definition = definitions.commands.get(command);
      if (!definition) throw new QmpError(`The command ${command} has not been found`, 'CommandNotFound');
      return visitors.qmp.visit(definition.argType, args ?? {}, [], null) as CommandArguments[C];
    },
    validateType: <T extends keyof QapiTypes>(typeName: T, value: unknown, mode: InputMode) =>
      visitors[mode].visit(typeName, value, [], null) as QapiTypes[T],
    introspect(view) {
      if (!introspection.has(view)) introspection.set(view, buildIntrospection(definitions, view === 'with-qblockd'));
      return introspection.get(view)!;
    },
  };
}
