import { readFileSync } from 'node:fs';

/**
 * The package's version: package.json's, the one place it is written (poolctl's bundle gets it
 * inlined by scripts/bundle-cli.mjs). Read, not imported as JSON: tsc would then copy
 * package.json into dist/, and dist/ would be a package of its own. This file is
 * src/daemon/version.ts in the source tree and dist/src/daemon/version.js when built, one level
 * deeper; the install keeps package.json beside dist/ (scripts/install.sh).
 */
export const VERSION: string = readVersion(['../../package.json', '../../../package.json']);

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
