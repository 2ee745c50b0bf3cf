import type { AgentDriver, Catalogue, PoolRules } from '../../core/index.js';

/** An unknown name may be an agent just added to the compose file; look again at most this often. */
const CATALOGUE_REFRESH_MS = 5000;

/**
 * The names the pool knows and whether the project's definition can start anything: what the
 * decisions take as their `Catalogue`.
 */
export interface CatalogueCell {
  current(): Catalogue;
  /**
   * Asks the driver whether a start can succeed. Called before a request that would start (and
   * maybe evict) is decided, and at each reconcile; a queued request is admitted on what the last
   * of those found. While the definition is unchanged this is a stat of its files, so an eviction
   * stays within its overhead; a driver that cannot tell is taken at its word that it can start.
   */
  checkDefinition(): Promise<void>;
  /** Reads the services again, at most every CATALOGUE_REFRESH_MS; true when the known names changed. */
  refresh(): Promise<boolean>;
  /** New rules (infrastructure), and the services if they were read again. */
  configure(rules: PoolRules, names?: readonly string[]): void;
  /** Why the definition cannot start anything now (the driver's `definitionProblem`), if so. */
  problem(): string | undefined;
  /** The pool's clock stepped (see PoolService.clockStepped). */
  shift(deltaMs: number): void;
}

export function createCatalogue(
  deps: { readonly driver: AgentDriver; readonly clock: () => number; readonly onError: (what: string, error: unknown) => void },
  services: readonly string[],
  initialRules: PoolRules,
): CatalogueCell {
  let rules = initialRules;
  let problem: string | undefined;
  let catalogue = catalogueOf(services);
  let checkedAt = deps.clock();

  function catalogueOf(names: readonly string[]): Catalogue {
    const memoryLimits = deps.driver.memoryLimits?.();
    return {
      known: new Set(names.filter((name) => !rules.infra.has(name))),
      ...(problem !== undefined && { invalid: problem }),
      ...(memoryLimits !== undefined && { memoryLimits }),
    };
  }

  return {
    current: () => catalogue,
    async checkDefinition() {
      if (deps.driver.definitionProblem === undefined) return;
      const found = await deps.driver.definitionProblem().catch((error: unknown) => (error as Error).message);
      // A definition loaded again (an edit) may have new limits even when it still loads.
      if (found === problem && deps.driver.memoryLimits?.() === catalogue.memoryLimits) return;
      const changed = found !== problem;
      problem = found;
      catalogue = catalogueOf([...catalogue.known]);
      if (changed && found !== undefined) deps.onError('loading the project (starts are refused, nobody is evicted, until it is fixed)', new Error(found));
    },
    async refresh() {
      if (deps.clock() - checkedAt < CATALOGUE_REFRESH_MS) return false;
      checkedAt = deps.clock();
      try {
        const before = catalogue.known.size;
        catalogue = catalogueOf(await deps.driver.services());
        return catalogue.known.size !== before;
      } catch (error) {
        deps.onError('reading the compose services', error);
        return false;
      }
    },
    configure(next, names) {
      rules = next;
      catalogue = catalogueOf(names ?? [...catalogue.known]);
    },
    problem: () => problem,
    shift(deltaMs) {
      checkedAt += deltaMs;
    },
  };
}
