import { QmpError } from '../qmp/errors.ts';
import { JsonArgumentError, parseJsonArgument } from '../qmp/json-argument.ts';

/**
 * The options a `json:` filename gives (QEMU's parse_json_filename), for a backing
 * file an image names so: dotted keys (`file.filename`) and nested objects mean the
 * same, the format the image names wins over the name's `driver` (QEMU merges the
 * name's options without overwriting it), and the node is read-only unless the
 * name says otherwise.
 */
export function jsonFilenameOptions(text: string, format: string | undefined): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = parseJsonArgument(text);
  } catch (error) {
    throw error instanceof JsonArgumentError ? new QmpError(`Could not parse the JSON options: ${error.message}`) : error;
  }
  if (!isObject(parsed)) throw new QmpError('Invalid JSON object given');
  const options = nested(parsed);
  if (format !== undefined) options.driver = format;
  options['read-only'] ??= true;
  return options;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Dotted keys as nested members, and members numbered 0..n-1 as lists (QEMU's flatten, then crumple). */
function nested(flat: Record<string, unknown>): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(flat)) {
    const path = key.split('.');
    let parent = root;
    for (const segment of path.slice(0, -1)) {
      if (!isObject(parent[segment])) parent[segment] = {};
      parent = parent[segment] as Record<string, unknown>;
    }
    const leaf = path[path.length - 1]!;
    parent[leaf] = isObject(value) && isObject(parent[leaf]) ? { ...(parent[leaf] as object), ...value } : value;
  }
  return listed(root) as Record<string, unknown>;
}

function listed(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(listed);
  if (!isObject(value)) return value;
  const keys = Object.keys(value);
  const entries = keys.map((key) => [key, listed(value[key])] as const);
  if (keys.length > 0 && keys.every((key, index) => key === String(index))) return entries.map(([, item]) => item);
  return Object.fromEntries(entries);
}
