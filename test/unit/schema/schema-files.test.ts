import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import meta from '../../../schema/meta.json' with { type: 'json' };
import { SCHEMA_FILES } from '../../../src/schema/definitions.ts';

describe('schema/*.json', () => {
  const validate = new Ajv({ allErrors: true }).compile(meta);

  for (const { file, entries } of SCHEMA_FILES) {
    it(`${file} matches schema/meta.json`, () => {
      const valid = validate(entries);
      expect(validate.errors ?? [], `${file}: ${JSON.stringify(validate.errors?.slice(0, 3))}`).toEqual([]);
      expect(valid).toBe(true);
    });
  }

  it('meta.json rejects an entry with an unknown keyword or a misspelt member', () => {
    expect(validate([{ struct: 'X', data: {}, bsae: 'Y' }])).toBe(false);
    expect(validate([{ enmu: 'X', data: [] }])).toBe(false);
    expect(validate([{ enum: 'X', data: ['a', 'a'] }])).toBe(false);
  });
});
