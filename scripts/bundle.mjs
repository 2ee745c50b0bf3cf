// Bundles the two programs into one file each, with esbuild.
// - poolctl: resolving and loading ~100 small modules cost about 30 ms of its cold start, and
//   `poolctl status` should cost little more than starting node itself. What only `poolctl doctor`
//   needs (zod, the config reader, the drivers) is split into chunks it imports when it runs.
// - the daemon (openclaw-pool): it runs for months on hosts where every megabyte is an agent's;
//   one minified file keeps it 11 MB smaller resident than the ~150 modules tsc emits (measured
//   idle with 3 agents: 58 against 70 MB). `migrate`, which the daemon never runs, is a chunk.
import { readFileSync, rmSync } from 'node:fs';
import { build } from 'esbuild';

const { version } = JSON.parse(readFileSync('package.json', 'utf8'));

const programs = [
  { name: 'poolctl', entry: 'cli/main.ts', define: { POOLCTL_VERSION: JSON.stringify(version) } },
  { name: 'openclaw-pool', entry: 'src/daemon/main.ts', define: { OPENCLAW_POOL_VERSION: JSON.stringify(version) } },
];
for (const { name, entry, define } of programs) {
  // Chunk names carry a content hash: without this, every build would leave the last one's behind.
  rmSync(`dist/${name}-chunks`, { recursive: true, force: true });
  await build({
    entryPoints: { [name]: entry },
    outdir: 'dist',
    outExtension: { '.js': '.mjs' },
    splitting: true,
    chunkNames: `${name}-chunks/[name]-[hash]`,
    bundle: true,
    minify: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'warning',
    define,
    // CommonJS dependencies (clipanion, prom-client) call require() for Node's built-ins; ESM has none of its own.
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  });
}
