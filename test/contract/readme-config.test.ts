import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { POOL_VARIABLES, POOL_VARIABLE_SPECS, type VariableSpec } from '../../src/contract/index.js';

/** The rows of the README's Configuration table: name → default and reload cells, as written. */
async function readmeRows(): Promise<Map<string, { readonly default: string; readonly reload: string }>> {
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.split(/^## /m).find((part) => part.startsWith('Configuration\n'));
  if (section === undefined) throw new Error('README.md has no "## Configuration" section');
  const rows = new Map<string, { default: string; reload: string }>();
  for (const [, name, shown, reload] of section.matchAll(/^\| `([A-Z0-9_]+)` \| (.*?) \| (yes|restart) \| .* \|$/gm)) rows.set(name!, { default: shown!, reload: reload! });
  return rows;
}

/** How the README writes a default: numbers plain, other values as code, unset as a dash, derived ones in words. */
function shownDefault(spec: VariableSpec): string {
  if (spec.shownDefault !== undefined) return spec.shownDefault;
  if (typeof spec.default !== 'string' || spec.default === '') return '—';
  return /^\d+$/.test(spec.default) ? spec.default : `\`${spec.default}\``;
}

describe("README's Configuration table", () => {
  it('lists exactly the declared variables, in their order', async () => {
    expect([...(await readmeRows()).keys()]).toEqual(POOL_VARIABLES);
  });

  it.each(POOL_VARIABLES)('gives %s its declared default and reload rule', async (name) => {
    const spec = POOL_VARIABLE_SPECS[name];
    expect((await readmeRows()).get(name)).toEqual({ default: shownDefault(spec), reload: spec.reloadable ? 'yes' : 'restart' });
  });
});
