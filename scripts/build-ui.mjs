// Builds the status page: bundles src/ui/client.ts (and the pure view functions it imports) into
// one inline script in src/ui/page.html, so the page is a single self-contained file with no
// external assets. Runs after tsc, whose output says where the daemon looks for the page.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { build } from 'esbuild';
import { STATUS_PAGE_PATH } from '../dist/src/bridge/page.js';

const MARKER = '<!--client-->';

const { outputFiles } = await build({
  entryPoints: ['src/ui/client.ts'],
  bundle: true,
  minify: true,
  format: 'iife',
  platform: 'browser',
  target: ['chrome111', 'firefox111', 'safari16.4'],
  write: false,
  logLevel: 'warning',
});
const script = outputFiles[0].text.trim();
// Inside <script>, the first "</script" ends the element whatever JavaScript thinks of it.
if (/<\/script/i.test(script)) throw new Error('build-ui: the bundled client contains "</script"; it cannot be inlined');
const template = await readFile('src/ui/page.html', 'utf8');
if (template.split(MARKER).length !== 2) throw new Error(`build-ui: src/ui/page.html must contain ${MARKER} exactly once`);
await mkdir(dirname(STATUS_PAGE_PATH), { recursive: true });
await writeFile(STATUS_PAGE_PATH, template.replace(MARKER, () => `<script>${script}</script>`));
