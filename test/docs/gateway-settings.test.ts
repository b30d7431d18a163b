import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { settingsTable } from '../../src/gateway/config/index.js';

const page = join(resolve(import.meta.dirname, '../..'), 'docs', 'gateway.md');
const BLOCK = /<!-- settings-table:begin -->\n([\s\S]*?)\n<!-- settings-table:end -->/;

describe('docs/gateway.md', () => {
  it('shows the settings table rendered from the configuration schema, unedited', () => {
    const block = BLOCK.exec(readFileSync(page, 'utf8'));
    expect(block, 'the page keeps the table between settings-table:begin and :end').not.toBeNull();
    expect(block?.[1], 'paste settingsTable() (src/gateway/config/table.ts) between the markers').toBe(
      settingsTable(),
    );
  });
});
