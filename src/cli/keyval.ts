import { OptionSyntaxError } from './errors.ts';
import { readValue, spanUntil } from './scan.ts';

/**
 * QEMU's KEY=VALUE,... syntax for QAPI-typed options (--blockdev, --monitor),
 * with the behaviour of QEMU 7.2's util/keyval.c:
 *
 * - items are separated by ','; inside a value ',,' stands for one ','; a
 *   trailing ',' is allowed;
 * - a dotted key builds nested objects ("file.filename=x"); a numeric fragment
 *   (not the first) makes its parent a list, whose indexes must have no gaps;
 * - a key given twice: the last value wins; a key used both as a leaf and as
 *   a parent, or a parent with both numeric and named children, is an error;
 * - with an implied key, a first item without '=' is that key's value (up to
 *   the first ',', no ',,' escaping there);
 * - an item "help" or "?" asks for help, which these options do not offer.
 *
 * Leaves are always strings: the consumer converts them by schema type.
 */
export type KeyvalTree = { [key: string]: KeyvalNode };
export type KeyvalNode = string | KeyvalTree | KeyvalNode[];

const MAX_FRAGMENT_LENGTH = 127;
const HELP_WORDS = new Set(['help', '?']);

export function parseKeyval(text: string, impliedKey?: string): KeyvalTree {
  const root: Branch = new Map();
  let position = 0;
  let implied = impliedKey;
  while (position < text.length) {
    position = parseItem(text, position, root, implied);
    implied = undefined;
  }
  return listify(root, '') as KeyvalTree;
}

/** Before listification every inner node is a map; lists are made at the end. */
type Branch = Map<string, Branch | string>;

function parseItem(text: string, start: number, root: Branch, impliedKey: string | undefined): number {
  const keyLength = spanUntil(text, start, '=,');
  const keyEnd = start + keyLength;
  if (keyLength > 0 && text[keyEnd] !== '=') {
    if (HELP_WORDS.has(text.slice(start, keyEnd))) throw new OptionSyntaxError('Help is not available for this option');
    if (impliedKey !== undefined) {
      root.set(impliedKey, text.slice(start, keyEnd));
      return text[keyEnd] === ',' ? keyEnd + 1 : keyEnd;
    }
  }
  const key = text.slice(start, keyEnd);
  const { parent, leaf } = walkKey(root, key);
  if (text[keyEnd] !== '=') throw new OptionSyntaxError(`Expected '=' after parameter '${key}'`);
  const { value, next } = readValue(text, keyEnd + 1);
  const old = parent.get(leaf);
  if (old instanceof Map) throw new OptionSyntaxError(`Parameters '${key}.*' used inconsistently`);
  parent.set(leaf, value);
  return next;
}

/** Creates the inner objects of a dotted key; returns the object that holds its last fragment. */
function walkKey(root: Branch, key: string): { parent: Branch; leaf: string } {
  const fragments = splitFragments(key);
  let parent = root;
  for (let i = 0; i < fragments.length - 1; i++) {
    const fragment = fragments[i]!;
    const existing = parent.get(fragment);
    if (typeof existing === 'string') {
      throw new OptionSyntaxError(`Parameters '${fragments.slice(0, i + 1).join('.')}.*' used inconsistently`);
    }
    const child: Branch = existing ?? new Map();
    parent.set(fragment, child);
    parent = child;
  }
  return { parent, leaf: fragments[fragments.length - 1]! };
}

/** The first fragment must be a QAPI name; the others a QAPI name or a list index. */
function splitFragments(key: string): string[] {
  const fragments: string[] = [];
  let position = 0;
  for (;;) {
    const rest = key.slice(position);
    const length = fragments.length > 0 && /^\d/.test(rest) ? /^\d+/.exec(rest)![0].length : qapiNameLength(rest);
    const after = rest[length];
    if (length === 0 || (after !== undefined && after !== '.')) throw new OptionSyntaxError(`Invalid parameter '${key}'`);
    if (length > MAX_FRAGMENT_LENGTH) {
      const whole = fragments.length === 0 && after === undefined;
      throw new OptionSyntaxError(`Parameter${whole ? '' : ' fragment'} '${rest.slice(0, length)}' is too long`);
    }
    fragments.push(rest.slice(0, length));
    if (after === undefined) return fragments;
    position += length + 1;
  }
}

/** Length of the QAPI name at the start of `text` (0 if none): [__RFQDN_]letter{letter|digit|-|_}. */
function qapiNameLength(text: string): number {
  const match = /^(?:__[A-Za-z0-9.-]+_)?[A-Za-z][A-Za-z0-9_-]*/.exec(text);
  return match ? match[0].length : 0;
}

/** Turns maps into objects, and maps whose keys are all indexes into gap-free lists. */
function listify(branch: Branch, path: string): KeyvalTree | KeyvalNode[] {
  const children = new Map<string, KeyvalNode>();
  for (const [key, child] of branch) children.set(key, child instanceof Map ? listify(child, `${path}${key}.`) : child);
  const indexed = [...children.keys()].filter(isIndex);
  if (indexed.length === 0) return Object.fromEntries(children);
  if (indexed.length !== children.size) throw new OptionSyntaxError(`Parameters '${path}*' used inconsistently`);
  const list: KeyvalNode[] = [];
  for (const [key, child] of children) list[indexValue(key)] = child;
  for (let i = 0; i < children.size; i++) {
    if (list[i] === undefined) throw new OptionSyntaxError(`Parameter '${path}${i}' missing`);
  }
  return list;
}

const isIndex = (key: string): boolean => /^\d/.test(key);

/** "007" is index 7; huge indexes cap (they are gaps anyway). */
const indexValue = (key: string): number => Math.min(Number(key), 0x7fffffff);
