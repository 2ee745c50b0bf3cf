import { readFileSync } from 'node:fs';

/** Inlined by scripts/bundle.mjs into the daemon's bundle, dist/openclaw-pool.mjs. */
declare const OPENCLAW_POOL_VERSION: string | undefined;

/**
 * The package's version: package.json's, the one place it is written. The bundles get it inlined;
 * from the source tree (the tests) and tsc's dist/src/ (the SDK's modules, one level deeper) it is
 * read, not imported as JSON: tsc would then copy package.json into dist/, and dist/ would be a
 * package of its own.
 */
export const VERSION: string = typeof OPENCLAW_POOL_VERSION === 'string' ? OPENCLAW_POOL_VERSION : readVersion(['../../package.json', '../../../package.json']);

function readVersion(candidates: readonly string[]): string {
  for (const candidate of candidates) {
    try {
      return (JSON.parse(readFileSync(new URL(candidate, import.meta.url), 'utf8')) as { version: string }).version;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  throw new Error(`no package.json at ${candidates.join(' or ')} from ${import.meta.url}`);
}
