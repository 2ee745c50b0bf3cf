import { fileURLToPath } from 'node:url';
import { type Metafile, build } from 'esbuild';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Bundle {
  /** The files (relative to the repository, `node_modules/...` for dependencies) loaded as soon as the entry is imported. */
  readonly loaded: string[];
  /** What the minified outputs holding them weigh. */
  readonly bytes: number;
  /** Each input's own imports, resolved, as esbuild reports them. */
  readonly inputs: Metafile['inputs'];
}

/**
 * Bundles `entry` as poolctl's bundle is made (scripts/bundle.mjs). With `splitting`, what the
 * entry only imports dynamically goes to chunks of its own and is not in `loaded`; without, all
 * it can ever load is.
 */
export async function bundle(entry: string, { splitting = false } = {}): Promise<Bundle> {
  const { metafile } = await build({
    entryPoints: [entry],
    absWorkingDir: ROOT,
    bundle: true,
    splitting,
    minify: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outdir: 'bundle',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const outputs = metafile.outputs;
  const entryOutput = Object.keys(outputs).find((path) => outputs[path]?.entryPoint === entry);
  if (entryOutput === undefined) throw new Error(`esbuild made no output for ${entry}`);
  const chunks = new Set<string>();
  const pending = [entryOutput];
  for (let path = pending.pop(); path !== undefined; path = pending.pop()) {
    if (chunks.has(path)) continue;
    chunks.add(path);
    for (const imported of outputs[path]?.imports ?? []) if (imported.kind === 'import-statement' && !imported.external) pending.push(imported.path);
  }
  const chosen = [...chunks].map((path) => outputs[path]!);
  return {
    loaded: [...new Set(chosen.flatMap((output) => Object.keys(output.inputs)))].sort(),
    bytes: chosen.reduce((sum, output) => sum + output.bytes, 0),
    inputs: metafile.inputs,
  };
}
