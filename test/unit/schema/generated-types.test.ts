import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SchemaDefinitions } from '../../../src/schema/definitions.ts';
import { GENERATED_TYPES_PATH, renderQapiTypes } from '../../../src/schema/generate-types.ts';
import type { CommandHandler } from '../../../src/qmp/dispatcher.ts';

describe('src/schema/generated/qapi-types.ts', () => {
  it('is what schema/*.json generates (run `npm run schema:types` after editing the schema)', () => {
    expect(fs.readFileSync(GENERATED_TYPES_PATH, 'utf8')).toBe(renderQapiTypes());
  });

  it('has one entry per command in CommandArguments and CommandResults', () => {
    const text = renderQapiTypes();
    for (const map of ['CommandArguments', 'CommandResults']) {
      const body = text.slice(text.indexOf(`export interface ${map} {`), text.indexOf('\n}\n', text.indexOf(`export interface ${map} {`)));
      const names = [...body.matchAll(/^ {2}'([^']+)':/gm)].map((match) => match[1]);
      expect(names).toEqual([...new SchemaDefinitions().commands.keys()]);
    }
  });

  it('spells a union as its common members and one alternative per tag value', () => {
    const text = renderQapiTypes();
    expect(text).toContain("| ({ 'driver': 'null-co' } & BlockdevOptionsNull)");
    expect(text).toMatch(/\| \{ 'driver': 'blklogwrites' \| [^}]*'vvfat' \}/);
    expect(text).toContain("export type BlockDirtyBitmapOrStr = string | BlockDirtyBitmap;");
  });

  // `tsc --noEmit` (npm test) fails if these stop being type errors.
  it('makes a handler whose arguments or result disagree with the schema a type error', () => {
    // @ts-expect-error blockdev-del takes node-name, not id
    const wrongArguments: CommandHandler<'blockdev-del'> = (args: { id: string }) => ({ id: args.id });
    // @ts-expect-error query-block-exports returns BlockExportInfo[], each with type, node-name and shutting-down
    const wrongResult: CommandHandler<'query-block-exports'> = () => [{ id: 'e' }];
    const right: CommandHandler<'blockdev-del'> = (args) => (args['node-name'] ? {} : {});
    expect([wrongArguments, wrongResult, right].every((handler) => typeof handler === 'function')).toBe(true);
  });
});
