import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bundle } from '../support/bundle.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { exports: Record<string, { default: string }> };

/** What the daemon alone runs: a host script that imports the SDK must not load any of it. */
const SERVER = /^src\/(daemon|drivers|store|rpc|bridge)\/|(^|\/)node_modules\/execa\//;

/** `./dist/sdk/index.js` → `sdk/index.ts`: tsc builds the tree at the root into dist/ (tsconfig's rootDir and outDir). */
const sourceOf = (built: string) => built.replace(/^\.\/dist\//, '').replace(/\.js$/, '.ts');

describe('the published entry points ship no server', () => {
  it.each(['./sdk', './contract'])('%s bundles without the daemon, its drivers, its store or execa', async (name) => {
    const entry = sourceOf(pkg.exports[name]!.default);
    const { loaded } = await bundle(entry);
    expect(loaded).toContain(entry);
    expect(loaded.filter((file) => SERVER.test(file))).toEqual([]);
  });
});
