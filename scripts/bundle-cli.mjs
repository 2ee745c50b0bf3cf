// Bundles poolctl into one file: resolving and loading ~100 small modules cost about 30 ms of its
// cold start, and `poolctl status` should cost little more than starting node itself.
import { build } from 'esbuild';

await build({
  entryPoints: ['cli/main.ts'],
  outfile: 'dist/poolctl.mjs',
  bundle: true,
  minify: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
  // CommonJS dependencies (clipanion) call require() for Node's built-ins; ESM has none of its own.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
});
