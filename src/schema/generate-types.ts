/**
 * Writes src/schema/generated/qapi-types.ts from schema/*.json: one TypeScript
 * type per QAPI enum, struct, union and alternate, and per-command maps of
 * argument and result types, so a handler's signature is the schema's.
 * Run with `npm run schema:types`; a unit test fails when the file is stale.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SCHEMA_FILES, SchemaDefinitions, type Member, type TypeDef, type TypeRef } from './definitions.ts';

export const GENERATED_TYPES_PATH = fileURLToPath(new URL('./generated/qapi-types.ts', import.meta.url));

/** What the input visitor hands over for each builtin; wide integers arrive as bigint beyond 2^53. */
const BUILTIN_TYPES: Record<string, string> = {
  str: 'string',
  bool: 'boolean',
  number: 'number',
  any: 'unknown',
  null: 'null',
  int8: 'number',
  int16: 'number',
  int32: 'number',
  uint8: 'number',
  uint16: 'number',
  uint32: 'number',
  int: 'number | bigint',
  int64: 'number | bigint',
  uint64: 'number | bigint',
  size: 'number | bigint',
};

const EMPTY = 'QapiEmpty';
const NAMED_KINDS = ['enum', 'struct', 'union', 'alternate'] as const;

export function renderQapiTypes(schema: SchemaDefinitions = new SchemaDefinitions()): string {
  const out: string[] = [
    '// Generated from schema/*.json by src/schema/generate-types.ts (npm run schema:types). Do not edit.',
    '',
    '/** Arguments of a command without any, and the return of a command that returns nothing. */',
    `export type ${EMPTY} = Record<string, never>;`,
  ];
  const named: string[] = [];
  for (const { file, entries } of SCHEMA_FILES) {
    out.push('', `// schema/${file}`);
    for (const entry of entries as Array<Record<string, unknown>>) {
      const kind = NAMED_KINDS.find((keyword) => keyword in entry);
      if (!kind) continue;
      const name = entry[kind] as string;
      named.push(name);
      out.push('', renderNamedType(schema, schema.type(name)));
    }
  }
  out.push('', '/** Every named schema type, by its QAPI name. */', 'export interface QapiTypes {');
  for (const name of named) out.push(`  ${quote(name)}: ${name};`);
  out.push('}');

  const commands = [...schema.commands.values()];
  out.push('', '/** Each command\'s arguments as the dispatcher hands them to its handler. */', 'export interface CommandArguments {');
  for (const command of commands) out.push(`  ${quote(command.name)}: ${argumentType(schema, command.argType)};`);
  out.push('}', '', '/** What each command\'s handler returns. */', 'export interface CommandResults {');
  for (const command of commands) out.push(`  ${quote(command.name)}: ${command.returns ? typeRef(command.returns) : EMPTY};`);
  out.push('}', '', 'export type CommandName = keyof CommandArguments;');

  out.push('', '/** Each event\'s data member. */', 'export interface EventData {');
  for (const event of schema.events.values()) {
    out.push(`  ${quote(event.name)}: ${event.argType ? argumentType(schema, event.argType) : 'undefined'};`);
  }
  out.push('}', '', 'export type EventName = keyof EventData;', '');
  return out.join('\n');
}

function renderNamedType(schema: SchemaDefinitions, definition: TypeDef): string {
  switch (definition.kind) {
    case 'enum':
      return `export type ${definition.name} = ${definition.values.map(quote).join(' | ')};`;
    case 'struct':
      return `export interface ${definition.name} ${objectLiteral(definition.members)}`;
    case 'alternate':
      return `export type ${definition.name} = ${definition.branches.map((branch) => typeRef(branch.type)).join(' | ')};`;
    case 'union':
      return `export type ${definition.name} = ${unionType(schema, definition)};`;
    case 'builtin':
      throw new Error(`schema: builtin '${definition.name}' cannot be redefined`);
  }
}

/**
 * The common members, and per tag value the variant's members; tag values
 * without a variant carry only the common members, as in QAPI.
 */
function unionType(schema: SchemaDefinitions, union: TypeDef & { kind: 'union' }): string {
  const tag = union.members.find((member) => member.name === union.discriminator);
  if (!tag || typeof tag.type !== 'string') throw new Error(`schema: union ${union.name} lacks its discriminator`);
  const tagEnum = schema.type(tag.type);
  if (tagEnum.kind !== 'enum') throw new Error(`schema: discriminator of ${union.name} is not an enum`);
  const common = union.members.filter((member) => member !== tag);
  const variants = Object.entries(union.branches).map(
    ([value, branch]) => `\n  | ({ ${quote(union.discriminator)}: ${quote(value)} } & ${branch})`,
  );
  const bare = tagEnum.values.filter((value) => !(value in union.branches));
  if (bare.length > 0) variants.push(`\n  | { ${quote(union.discriminator)}: ${bare.map(quote).join(' | ')} }`);
  const alternatives = `(${variants.join('')}\n)`;
  return common.length > 0 ? `${objectLiteral(common)} & ${alternatives}` : alternatives;
}

/** A command's or event's argument type: inline structs are spelled out, named ones referenced. */
function argumentType(schema: SchemaDefinitions, argType: string): string {
  const definition = schema.type(argType);
  if (definition.kind === 'struct' && definition.members.length === 0) return EMPTY;
  if (definition.kind === 'struct' && argType.startsWith('q_')) return objectLiteral(definition.members, '  ');
  return argType;
}

function objectLiteral(members: Member[], indent = ''): string {
  if (members.length === 0) return '{}';
  const lines = members.map((member) => `${indent}  ${quote(member.name)}${member.optional ? '?' : ''}: ${typeRef(member.type)};`);
  return `{\n${lines.join('\n')}\n${indent}}`;
}

function typeRef(ref: TypeRef): string {
  if (Array.isArray(ref)) {
    const element = typeRef(ref[0]);
    return element.includes(' ') ? `Array<${element}>` : `${element}[]`;
  }
  return BUILTIN_TYPES[ref] ?? ref;
}

function quote(text: string): string {
  return `'${text}'`;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  fs.mkdirSync(path.dirname(GENERATED_TYPES_PATH), { recursive: true });
  fs.writeFileSync(GENERATED_TYPES_PATH, renderQapiTypes());
  console.log(`wrote ${path.relative(process.cwd(), GENERATED_TYPES_PATH)}`);
}
