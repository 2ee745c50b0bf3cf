// Runs a benchmark written in TypeScript: bundles bench/<name>.ts with esbuild (dependencies stay
// external) into node_modules/.cache/bench and imports it. The daemon and poolctl it measures are
// the built ones (dist/), so the npm scripts build first.
import { build } from 'esbuild';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const name = process.argv[2];
if (!name) {
  console.error('usage: node bench/run.mjs <http|rpc|cli|start|evict|scale|footprint|callers|swarm|check|profile>');
  process.exit(2);
}
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'node_modules/.cache/bench');
await mkdir(outdir, { recursive: true });
const outfile = join(outdir, `${name}.mjs`);
await build({
  entryPoints: [join(root, 'bench', `${name}.ts`)],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  logLevel: 'warning',
  // bench/lib.ts resolves paths from the repository root, not from the bundle's location.
  define: { 'import.meta.dirname': JSON.stringify(join(root, 'bench')) },
});
process.env.BENCH_ENTRY = name;
await import(pathToFileURL(outfile).href);
