import { SchemaDefinitions, type Member, type TypeDef, type TypeRef } from '../../src/schema/definitions.ts';
import { RawJson } from './json-text.ts';
import type { Random } from './random.ts';

/** Node and device names of the fuzz launch line (see target.ts), plus one that does not exist. */
export const NODE_NAMES = ['n0', 'q1', 'f1', 'd0', 'nosuch'];
const BITMAP_NAMES = ['b0', 'b1', 'b2'];
const EXPORT_IDS = ['e0', 'e1'];

/** Commands whose effect the fuzzer cannot compare (quit ends the process) or whose answer is a listing of what qblockd implements. */
const EXCLUDED_COMMANDS = new Set(['quit', 'query-qmp-schema', 'query-commands']);

/**
 * Union branches qblockd does not emulate, refused with "... is not supported by qblockd":
 * valid requests stay inside the emulated set (mutations may still leave it).
 */
const EMULATED_BRANCHES: Record<string, string[]> = {
  BlockdevOptions: ['null-co', 'null-aio', 'file', 'raw', 'qcow2'],
  TransactionAction: ['abort', 'block-dirty-bitmap-add', 'block-dirty-bitmap-remove', 'block-dirty-bitmap-clear',
    'block-dirty-bitmap-enable', 'block-dirty-bitmap-disable', 'block-dirty-bitmap-merge'],
  BlockExportOptions: ['nbd'],
  SocketAddressLegacy: ['unix', 'inet'],
};

/** qemu-io commands for human-monitor-command; the device comes from NODE_NAMES. */
const QEMU_IO_COMMANDS = ['write 0 64k', 'write -z 0 1M', 'discard 0 64k', 'read 0 512', 'flush', 'write 1M 4k',
  'write 0x3ff0000 512', 'write 0 2147483136', 'write 0 2147483648', 'write -1 512', 'write 0 0', 'write 512 0x200',
  'read 0 1k', 'write 8M 1', 'writev 0 512', 'aio_write 0 512', 'write', 'frobnicate', 'write 0 64k extra',
  'write -c 0 64k', 'write -c 100 64k', 'write -z -u 0 64k', 'write -z -n 1000 512', 'write -f -c 0 512', 'write -P 0x5 1000 3000'];

/** Plausible values by member name: valid requests mostly hit existing nodes and bitmaps. */
const VALUES_BY_MEMBER: Record<string, readonly unknown[]> = {
  node: NODE_NAMES,
  'node-name': NODE_NAMES,
  device: NODE_NAMES,
  file: NODE_NAMES,
  name: BITMAP_NAMES,
  target: BITMAP_NAMES,
  local: BITMAP_NAMES,
  id: EXPORT_IDS,
  filename: ['@DIR@/disk.qcow2', '@DIR@/raw.img', '@DIR@/missing.img'],
  path: ['@DIR@/nbd.sock'],
  host: ['127.0.0.1', 'localhost'],
  port: ['0'],
  granularity: [512, 4096, 65536, 1048576, 2147483648],
  size: [1048576, 16777216, 512, 0],
  offset: [0, 512, 65536],
  'latency-ns': [0, 1000],
  'max-connections': [0, 1, 16],
  'cpu-index': [0],
};

const INTEGER_TYPES = new Set(['int', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64', 'size']);

/** A value in a request and the schema type it was built for: where a mutation can strike. */
interface Slot {
  parent: Record<string, unknown> | unknown[];
  key: string | number;
  type: TypeRef;
  member: string | null;
}

export interface Request {
  value: Record<string, unknown>;
  description: string;
}

/** Valid requests built by walking the schema, then mutated as an attacker or a buggy client would. */
export class RequestGenerator {
  private readonly schema = new SchemaDefinitions();
  // qblockd's own x-qblockd-* commands are not QEMU's: there is nothing to compare them with.
  private readonly commands = [...this.schema.commands.values()].filter((command) => !command.qblockdOnly && !EXCLUDED_COMMANDS.has(command.name));

  constructor(private readonly random: Random) {}

  /** A valid request for a random command (valid by the schema; the daemon may still refuse it). */
  valid(): { request: Record<string, unknown>; slots: Slot[] } {
    const command = this.random.pick(this.commands);
    const slots: Slot[] = [];
    const holder: Record<string, unknown> = {};
    holder.arguments = this.build(command.argType, slots, null, 0);
    if (command.name === 'human-monitor-command') (holder.arguments as Record<string, unknown>)['command-line'] = this.qemuIoLine();
    const request: Record<string, unknown> = { execute: command.name };
    if (Object.keys(holder.arguments as object).length > 0 || this.random.chance(0.2)) request.arguments = holder.arguments;
    if (this.random.chance(0.2)) request.id = this.random.pick([1, 'x', [1, 'a'], { a: null }, 0.5]);
    return { request, slots };
  }

  /** A valid request with one mutation applied (sometimes none, sometimes two). */
  next(): Request {
    const { request, slots } = this.valid();
    const command = request.execute as string;
    const rounds = this.random.pick([0, 1, 1, 1, 2]);
    const applied: string[] = [];
    for (let round = 0; round < rounds; round++) applied.push(this.mutate(request, slots));
    return { value: request, description: `${command}${applied.length ? ': ' + applied.join('; ') : ''}` };
  }

  private qemuIoLine(): string {
    const device = this.random.chance(0.1) ? `-d ${this.random.pick(NODE_NAMES)}` : this.random.pick(NODE_NAMES);
    return `qemu-io ${device} "${this.random.pick(QEMU_IO_COMMANDS)}"`;
  }

  private build(ref: TypeRef, slots: Slot[], member: string | null, depth: number): unknown {
    if (Array.isArray(ref)) {
      const list: unknown[] = [];
      const length = this.random.pick([0, 1, 1, 2, 3]);
      for (let i = 0; i < length; i++) this.place(list, i, ref[0], slots, member, depth + 1);
      return list;
    }
    const definition = this.schema.type(ref);
    const hinted = member !== null ? VALUES_BY_MEMBER[member] : undefined;
    switch (definition.kind) {
      case 'builtin':
        if (hinted && (definition.jsonType !== 'int' || typeof hinted[0] === 'number')) return this.random.pick(hinted);
        return this.builtin(definition.name);
      case 'enum':
        return this.random.pick(EMULATED_BRANCHES[definition.name] ?? definition.values);
      case 'struct':
        return this.object(definition.members, slots, depth);
      case 'union': {
        const tags = EMULATED_BRANCHES[definition.name] ?? Object.keys(definition.branches);
        const object = this.object(definition.members.filter((m) => m.name !== definition.discriminator), slots, depth);
        const tag = this.random.pick(tags);
        const branch = this.schema.type(definition.branches[tag]!) as TypeDef & { members: Member[] };
        return { [definition.discriminator]: tag, ...object, ...this.object(branch.members, slots, depth) };
      }
      case 'alternate': {
        const branches = definition.branches.filter((b) => depth < 2 || this.schema.type(b.type).kind === 'builtin' || this.schema.type(b.type).kind === 'enum');
        const branch = this.random.pick(branches.length > 0 ? branches : definition.branches);
        return this.build(branch.type, slots, member, depth + 1);
      }
    }
  }

  private object(members: Member[], slots: Slot[], depth: number): Record<string, unknown> {
    const object: Record<string, unknown> = {};
    for (const member of members) {
      if (member.optional && !this.random.chance(depth > 1 ? 0.1 : 0.3)) continue;
      this.place(object, member.name, member.type, slots, member.name, depth + 1);
    }
    return object;
  }

  private place(parent: Record<string, unknown> | unknown[], key: string | number, type: TypeRef, slots: Slot[], member: string | null, depth: number): void {
    (parent as Record<string | number, unknown>)[key] = this.build(type, slots, member, depth);
    slots.push({ parent, key, type, member });
  }

  private builtin(name: string): unknown {
    if (INTEGER_TYPES.has(name)) return this.random.pick([0, 1, 512, 65536]);
    switch (name) {
      case 'str':
        return this.random.pick(['zz', 'b0', 'n0', '']);
      case 'bool':
        return this.random.chance(0.5);
      case 'number':
        return this.random.pick([0, 1.5]);
      case 'null':
        return null;
      default:
        return this.random.pick([{}, [], 1, 'x', null]);
    }
  }

  /** Applies one mutation; returns what it did. */
  private mutate(request: Record<string, unknown>, slots: Slot[]): string {
    const live = slots.filter((slot) => reachable(request, slot));
    const mutations = live.length > 0 ? MUTATIONS : ENVELOPE_ONLY;
    const mutation = this.random.pick(mutations);
    if (mutation === 'envelope') return this.mutateEnvelope(request);
    const slot = this.random.pick(live);
    const where = `${slot.member ?? `[${slot.key}]`}`;
    const set = (value: unknown) => ((slot.parent as Record<string | number, unknown>)[slot.key] = value);
    const current = (slot.parent as Record<string | number, unknown>)[slot.key];
    const typeName = Array.isArray(slot.type) ? null : slot.type;
    const definition = typeName ? this.schema.type(typeName) : null;
    switch (mutation) {
      case 'wrong-type': {
        // Not 'x': human-monitor-command would run HMP's memory dump, which qblockd does not emulate.
        const value = this.random.pick(['zz', 1, -1, true, null, [], {}, 1.5, [1], { a: 1 }]);
        set(value);
        return `${where} = ${JSON.stringify(value)}`;
      }
      case 'number-forms': {
        const base = typeof current === 'number' ? current : this.random.pick([0, 512, 65536]);
        const text = this.random.pick([`${base}.0`, `${base}e0`, base === 0 ? '-0' : `${base / 1000}e3`, `${base}.5`, `${base}E+0`, '1e400', '-1e400', '0.0']);
        set(new RawJson(text));
        return `${where} = ${text}`;
      }
      case 'out-of-range': {
        const text = this.random.pick(['-1', '-2', '18446744073709551615', '18446744073709551616', '9223372036854775807',
          '9223372036854775808', '-9223372036854775808', '-9223372036854775809', '4294967295', '4294967296', '2147483648',
          '-2147483649', '65535', '65536', '256', '-129', '99999999999999999999999999', '1048577', '511']);
        set(new RawJson(text));
        return `${where} = ${text}`;
      }
      case 'missing': {
        if (Array.isArray(slot.parent)) slot.parent.splice(slot.key as number, 1);
        else delete slot.parent[slot.key as string];
        return `${where} removed`;
      }
      case 'extra': {
        const target = isObject(current) ? current : slot.parent;
        if (Array.isArray(target)) target.push(this.random.pick(['x', 1, {}]));
        else target[this.random.pick(['bogus', 'node', 'name', 'driver', 'type', 'data', '*name', ''])] = this.random.pick(['x', 1, null]);
        return `extra member near ${where}`;
      }
      case 'unicode': {
        const value = this.random.pick(UNICODE_STRINGS);
        set(typeof current === 'string' && this.random.chance(0.5) ? current + value : value);
        return `${where} unicode ${JSON.stringify(value)}`;
      }
      case 'huge-string': {
        // QEMU's lexer takes about 1.5 s for 64 KiB (more on a loaded machine): longer strings only time out.
        const length = this.random.pick([1023, 1024, 1025, 4096, 16384]);
        set(this.random.pick(['a', 'é', '€', '\u{1F600}']).repeat(length));
        return `${where} string x${length}`;
      }
      case 'deep-nesting': {
        const depth = this.random.pick([100, 1023, 1024, 1025, 2000]);
        const open = this.random.chance(0.5) ? '[' : '{"a": ';
        const close = open === '[' ? ']' : '}';
        set(new RawJson(open.repeat(depth) + '1' + close.repeat(depth)));
        return `${where} nested ${depth} deep`;
      }
      case 'enum': {
        const values = definition?.kind === 'enum' ? definition.values : ['zz'];
        const value = this.random.pick([...values, 'bogus', '', values[0]!.toUpperCase(), `${values[0]} `]);
        set(value);
        return `${where} = ${JSON.stringify(value)}`;
      }
    }
  }

  private mutateEnvelope(request: Record<string, unknown>): string {
    const change = this.random.int(6);
    if (change === 0) request.arguments = this.random.pick([[], 'x', 1, null, true]);
    else if (change === 1) request.execute = this.random.pick([1, null, [], {}, '', 'EXECUTE', `${request.execute as string} `]);
    else if (change === 2) request[this.random.pick(['bogus', 'control', 'exec-oob', 'Execute'])] = this.random.pick([1, {}, 'x']);
    else if (change === 3) delete request.execute;
    else if (change === 4) request.id = new RawJson(this.random.pick(['1.0', '1e400', '-0', '18446744073709551616', '"\\u0000"']));
    else request['exec-oob'] = request.execute;
    return `envelope change ${change}`;
  }
}

type Mutation = 'wrong-type' | 'number-forms' | 'out-of-range' | 'missing' | 'extra' | 'unicode' | 'huge-string' | 'deep-nesting' | 'enum' | 'envelope';
const MUTATIONS: Mutation[] = ['wrong-type', 'wrong-type', 'number-forms', 'number-forms', 'out-of-range', 'out-of-range', 'missing',
  'extra', 'unicode', 'unicode', 'huge-string', 'deep-nesting', 'enum', 'envelope'];
const ENVELOPE_ONLY: Mutation[] = ['envelope'];

/** Valid JSON strings that test Unicode handling: noncharacters, lone surrogates, NUL, the last code point, wide characters. */
export const UNICODE_STRINGS = ['\uffff', '\ufffe', '\ud800', '\udfff', '\u0000', '\u{10FFFF}', '\u{1F600}', '\u00e9', '\u202e',
  '\ufeff', '\u{FDD0}', '\u{1FFFE}', 'a\u0000b', '\u0001\u001f', '\u007f', '\u0080', '\u07ff', '\u0800'];

function reachable(root: unknown, slot: Slot): boolean {
  const seen = new Set<unknown>();
  const walk = (value: unknown): boolean => {
    if (value === slot.parent) return (slot.parent as Record<string | number, unknown>)[slot.key] !== undefined;
    if (typeof value !== 'object' || value === null || seen.has(value) || value instanceof RawJson) return false;
    seen.add(value);
    return Object.values(value).some(walk);
  };
  return walk(root);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof RawJson);
}
