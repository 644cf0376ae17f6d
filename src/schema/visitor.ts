import { QmpError } from '../qmp/errors.ts';
import { JsonFloat, isJsonObject, jsonInteger } from '../qmp/json-value.ts';
import { qdictKeyOrder } from '../qmp/qdict-order.ts';
import { ghashKeyOrder } from './ghash-order.ts';
import { parseInteger, parseSize } from './number-text.ts';
import type { Member, SchemaDefinitions, TypeDef, TypeRef } from './definitions.ts';

/**
 * How input arrives: QMP's typed JSON; keyval (`-blockdev a=b,c.d=e`), strings in a tree;
 * QemuOpts (the non-JSON `-object`), flat strings read by QEMU's opts visitor, which has
 * texts of its own and takes no nested members.
 */
export type InputMode = 'qmp' | 'keyval' | 'opts';

/** One step of the path QEMU prints for nested members: "file.filename", "actions[0].data.name". */
type PathStep = string | number;

const INT_RANGES: Record<string, { min: bigint; max: bigint; label: string; signed: boolean }> = {
  int: { min: -(2n ** 63n), max: 2n ** 63n - 1n, label: 'int64', signed: true },
  int64: { min: -(2n ** 63n), max: 2n ** 63n - 1n, label: 'int64', signed: true },
  int32: { min: -(2n ** 31n), max: 2n ** 31n - 1n, label: 'int32_t', signed: true },
  int16: { min: -(2n ** 15n), max: 2n ** 15n - 1n, label: 'int16_t', signed: true },
  int8: { min: -128n, max: 127n, label: 'int8_t', signed: true },
  uint64: { min: 0n, max: 2n ** 64n - 1n, label: 'uint64', signed: false },
  size: { min: 0n, max: 2n ** 64n - 1n, label: 'uint64', signed: false },
  uint32: { min: 0n, max: 2n ** 32n - 1n, label: 'uint32_t', signed: false },
  uint16: { min: 0n, max: 2n ** 16n - 1n, label: 'uint16_t', signed: false },
  uint8: { min: 0n, max: 255n, label: 'uint8_t', signed: false },
};

/**
 * Walks an input value along a schema type the way QEMU's QObject input
 * visitor does: members in declaration order, first problem wins, unexpected
 * members reported last. In keyval mode scalars arrive as strings and are
 * converted. Returns the converted value, as QEMU's generated C struct holds
 * it: only the schema's members, integers as numbers (bigints beyond 2^53),
 * unsigned ones wrapped as in C, floats unwrapped.
 */
export class InputVisitor {
  constructor(
    private readonly schema: SchemaDefinitions,
    private readonly mode: InputMode,
  ) {}

  visit(ref: TypeRef, value: unknown, path: PathStep[], name: string | null): unknown {
    if (Array.isArray(ref)) return this.visitList(ref[0], value, path);
    const definition = this.schema.type(ref);
    switch (definition.kind) {
      case 'builtin':
        return this.visitBuiltin(definition.name, value, path, name);
      case 'enum':
        return this.visitEnum(definition.values, value, path, name);
      case 'struct':
        return this.visitObject(definition, value, path, () => definition.members);
      case 'union':
        return this.visitObject(definition, value, path, (object) => {
          const tag = object[definition.discriminator];
          const branch = typeof tag === 'string' ? definition.branches[tag] : undefined;
          const branchDef = branch ? this.schema.type(branch) : undefined;
          return branchDef && branchDef.kind === 'struct' ? branchDef.members : [];
        });
      case 'alternate':
        return this.visitAlternate(definition, value, path, name);
    }
  }

  private visitObject(
    definition: TypeDef & { members: Member[] },
    value: unknown,
    path: PathStep[],
    variantMembers: (object: Record<string, unknown>) => Member[],
  ): Record<string, unknown> {
    if (!isJsonObject(value)) throw this.mode === 'opts' ? new QmpError(`Invalid parameter '${fullName(path)}'`) : typeError(path, 'object');
    const result: Record<string, unknown> = {};
    const visited = new Set<string>();
    const visitMembers = (members: Member[]) => {
      for (const member of members) {
        visited.add(member.name);
        if (!(member.name in value)) {
          if (member.optional) continue;
          throw new QmpError(`Parameter '${fullName([...path, member.name])}' is missing`);
        }
        result[member.name] = this.visit(member.type, value[member.name], [...path, member.name], member.name);
      }
    };
    visitMembers(definition.members);
    visitMembers(variantMembers(result));
    const unexpected = ghashKeyOrder(qdictKeyOrder(Object.keys(value))).find((key) => !visited.has(key));
    if (unexpected !== undefined) {
      throw new QmpError(this.mode === 'opts' ? `Invalid parameter '${unexpected}'` : `Parameter '${fullName([...path, unexpected])}' is unexpected`);
    }
    return result;
  }

  private visitList(element: string, value: unknown, path: PathStep[]): unknown[] {
    if (!Array.isArray(value)) throw typeError(path, 'array');
    return value.map((item, index) => this.visit(element, item, [...path, index], null));
  }

  private visitEnum(values: string[], value: unknown, path: PathStep[], name: string | null): string {
    if (typeof value !== 'string') throw typeError(path, 'string');
    if (!values.includes(value)) throw new QmpError(`Parameter '${name ?? 'null'}' does not accept value '${value}'`);
    return value;
  }

  /** The branch is chosen by the JSON type of the input, as QEMU's generated alternate visitors do. */
  private visitAlternate(definition: TypeDef & { kind: 'alternate' }, value: unknown, path: PathStep[], name: string | null) {
    const jsonKind = value === null ? 'null' : isJsonObject(value) ? 'object' : isJsonNumber(value) ? 'number' : Array.isArray(value) ? 'array' : typeof value;
    const branch = definition.branches.find((candidate) => {
      const type = this.schema.type(candidate.type);
      if (jsonKind === 'object') return type.kind === 'struct' || type.kind === 'union';
      // Command-line (keyval) scalars are all strings: any scalar branch takes them.
      if (jsonKind === 'string') {
        return type.kind === 'enum' || (type.kind === 'builtin' && (type.jsonType === 'string' || this.mode !== 'qmp'));
      }
      if (type.kind !== 'builtin') return false;
      if (jsonKind === 'number') return type.jsonType === 'int' || type.jsonType === 'number';
      if (jsonKind === 'boolean') return type.jsonType === 'boolean';
      return jsonKind === 'null' && type.jsonType === 'null';
    });
    if (!branch) throw new QmpError(`Invalid parameter type for '${name ?? 'null'}', expected: ${definition.name}`);
    return this.visit(branch.type, value, path, name);
  }

  private visitBuiltin(type: string, value: unknown, path: PathStep[], name: string | null): unknown {
    const range = INT_RANGES[type];
    if (range) return this.mode === 'qmp' ? this.qmpInteger(range, value, path, name) : this.textInteger(type, value, path, name);
    switch (type) {
      case 'str':
        if (typeof value !== 'string') throw typeError(path, 'string');
        return value;
      case 'bool':
        if (this.mode !== 'qmp') return keyvalBool(value, path);
        if (typeof value !== 'boolean') throw typeError(path, 'boolean');
        return value;
      case 'number':
        if (this.mode !== 'qmp') {
          const parsed = typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
          if (Number.isNaN(parsed)) throw valueError(path, 'number');
          return parsed;
        }
        if (value instanceof JsonFloat) return value.value;
        if (typeof value !== 'number' && typeof value !== 'bigint') throw typeError(path, 'number');
        return Number(value);
      case 'null':
        if (value !== null) throw typeError(path, 'null');
        return null;
      default:
        return value;
    }
  }

  /**
   * Signed types take only integers that fit int64 ("Invalid parameter type ... integer");
   * unsigned ones take any integer, negatives wrapping as in C ("expects uint64" otherwise).
   * A float is refused by both even when whole (65536.0): QEMU reads it as a double.
   * The narrower range check names the member without its path, as QEMU does.
   */
  private qmpInteger(range: (typeof INT_RANGES)[string], value: unknown, path: PathStep[], name: string | null) {
    const integral = typeof value === 'bigint' || (typeof value === 'number' && Number.isInteger(value));
    let big = integral ? BigInt(value as number | bigint) : null;
    if (range.signed) {
      if (big === null || big < INT_RANGES.int64!.min || big > INT_RANGES.int64!.max) throw typeError(path, 'integer');
    } else {
      if (big === null || big > INT_RANGES.uint64!.max || big < INT_RANGES.int64!.min) throw valueError(path, 'uint64');
      if (big < 0n) big += 2n ** 64n;
    }
    if (big < range.min || big > range.max) throw new QmpError(`Parameter '${name ?? 'null'}' expects ${range.label}`);
    return jsonInteger(big);
  }

  /** An integer written as text (keyval, QemuOpts); the opts visitor names what it expected its own way. */
  private textInteger(type: string, value: unknown, path: PathStep[], name: string | null): number | bigint {
    if (typeof value !== 'string') throw typeError(path, 'integer');
    const size = type === 'size' ? parseSize(value) : undefined;
    const parsed = size === undefined ? parseInteger(value) : typeof size === 'bigint' ? size : null;
    if (parsed === null) {
      if (this.mode === 'keyval') throw valueError(path, type === 'size' ? 'size' : 'integer');
      throw valueError(path, type === 'size' ? 'a size value' : INT_RANGES[type]!.signed ? 'an int64 value' : 'an uint64 value');
    }
    const range = INT_RANGES[type]!;
    if (parsed < range.min || parsed > range.max) throw new QmpError(`Parameter '${name ?? 'null'}' expects ${range.label}`);
    return jsonInteger(parsed);
  }
}

function keyvalBool(value: unknown, path: PathStep[]): boolean {
  if (value === 'on' || value === 'yes' || value === 'true' || value === 'y') return true;
  if (value === 'off' || value === 'no' || value === 'false' || value === 'n') return false;
  throw valueError(path, "'on' or 'off'");
}

function isJsonNumber(value: unknown): boolean {
  return typeof value === 'number' || typeof value === 'bigint' || value instanceof JsonFloat;
}

export function fullName(path: PathStep[]): string {
  let name = '';
  for (const step of path) {
    if (typeof step === 'number') name += `[${step}]`;
    else name += name === '' ? step : `.${step}`;
  }
  return name;
}

function typeError(path: PathStep[], expected: string): QmpError {
  return new QmpError(`Invalid parameter type for '${fullName(path) || 'null'}', expected: ${expected}`);
}

function valueError(path: PathStep[], expected: string): QmpError {
  return new QmpError(`Parameter '${fullName(path) || 'null'}' expects ${expected}`);
}
