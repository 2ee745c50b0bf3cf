// Bundles poolctl into one file: resolving and loading ~100 small modules cost about 30 ms of its
// cold start, and `poolctl status` should cost little more than starting node itself. What only
// `poolctl doctor` needs (zod, the config reader, the drivers) is split into chunks it imports when it runs.
import { readFileSync, rmSync } from 'node:fs';
import { build } from 'esbuild';

const { version } = JSON.parse(readFileSync('package.json', 'utf8'));

// Chunk names carry a content hash: without this, every build would leave the last one's behind.
rmSync('dist/poolctl-chunks', { recursive: true, force: true });
await build({
  entryPoints: { poolctl: 'cli/main.ts' },
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  splitting: true,
  chunkNames: 'poolctl-chunks/[name]-[hash]',
  bundle: true,
  minify: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
  define: { POOLCTL_VERSION: JSON.stringify(version) },
  // CommonJS dependencies (clipanion) call require() for Node's built-ins; ESM has none of its own.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
});
