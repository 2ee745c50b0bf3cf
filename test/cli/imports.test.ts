import { describe, expect, it } from 'vitest';
import { bundle } from '../support/bundle.js';

describe("poolctl's imports", () => {
  it('every command but doctor imports only the SDK, the contract and the shared text helpers', async () => {
    const { inputs } = await bundle('cli/main.ts', { splitting: true });
    const strays = Object.entries(inputs)
      .filter(([file]) => file.startsWith('cli/'))
      .flatMap(([file, { imports }]) =>
        imports
          // doctor's diagnosis needs the daemon's config reader and drivers, and is loaded only when it runs.
          .filter((i) => !i.external && !(file === 'cli/commands/doctor.ts' && i.kind === 'dynamic-import'))
          .filter((i) => !/^(cli|sdk|src\/contract|src\/text)\/|(^|\/)node_modules\//.test(i.path))
          .map((i) => `${file} → ${i.path}`),
      );
    expect(strays).toEqual([]);
  });

  it('loads no server part, no zod and no execa before a command runs', async () => {
    const { loaded } = await bundle('cli/main.ts', { splitting: true });
    expect(loaded).toContain('sdk/client.ts');
    // Each would add to every command's cold start; zod alone is most of doctor's chunk.
    expect(loaded.filter((file) => /^src\/(daemon|drivers|store|rpc|bridge|doctor)\/|(^|\/)node_modules\/(zod|execa)\//.test(file))).toEqual([]);
  });
});
