import { createRequire } from 'node:module';
import type { ErrorObject, ValidateFunction } from 'ajv';
import schema from '../../config/schema.json' with { type: 'json' };

let validator: ValidateFunction | undefined;

/**
 * Checks a parsed config file against config/schema.json. Returns null when
 * valid, else one sentence naming the first bad key. Ajv is loaded on first
 * use only: starting without --config never pays for it.
 */
export function validateConfigFile(data: unknown): string | null {
  validator ??= compileSchema();
  if (validator(data)) return null;
  return describeError(validator.errors![0]!);
}

function compileSchema(): ValidateFunction {
  const { Ajv } = createRequire(import.meta.url)('ajv') as typeof import('ajv');
  const ajv = new Ajv({ allErrors: false, allowUnionTypes: true });
  return ajv.compile(schema);
}

/** "/log/level" -> "log.level"; "/blockdevs/0" -> "blockdevs[0]". */
function keyPath(instancePath: string, child?: string): string {
  const parts = instancePath.split('/').slice(1);
  if (child !== undefined) parts.push(child);
  return parts.map((part, i) => (/^\d+$/.test(part) ? `[${part}]` : i === 0 ? part : `.${part}`)).join('');
}

function describeError(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties':
      return `unknown key '${keyPath(error.instancePath, String(params.additionalProperty))}'`;
    case 'required':
      return `key '${keyPath(error.instancePath, String(params.missingProperty))}' is missing`;
    case 'enum':
      return `key '${keyPath(error.instancePath)}' must be one of: ${(params.allowedValues as unknown[]).join(', ')}`;
    case 'const':
      return `key '${keyPath(error.instancePath)}' must be ${JSON.stringify(params.allowedValue)}`;
    case 'type':
      return `key '${keyPath(error.instancePath)}' must be of type ${String(params.type).replace(',', ' or ')}`;
    default:
      return error.instancePath === '' ? `configuration ${error.message}` : `key '${keyPath(error.instancePath)}' ${error.message}`;
  }
}
