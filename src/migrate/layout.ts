import { join } from 'node:path';

export const UNIT_NAME = 'openclaw-pool.service';

/** Where an install of openclaw-pool keeps its system files, below `root` (`/` but in tests). */
export interface Layout {
  readonly unit: string;
  /** The unit's own drop-ins: openclaw-pool's paths.conf, or whatever the old install put there. */
  readonly unitDropInDir: string;
  readonly pathsConf: string;
  /** Writes paths.conf from a pool.env (ReadWritePaths= for POOL_DIR under the unit's ProtectHome=read-only). */
  readonly writePathsConf: string;
  /** Runtime drop-ins (gone at reboot): where migrate switches the running unit's stop commands off. */
  readonly dropInDir: string;
  readonly dropIn: string;
  /** The unit install.sh ships with the build. */
  readonly shippedUnit: string;
  readonly configDir: string;
  readonly poolEnv: string;
  /** One directory per migration: the old files and the ROLLBACK script. */
  readonly backupRoot: string;
}

export function systemLayout(root = '/'): Layout {
  const at = (path: string) => join(root, path);
  return {
    unit: at(`/etc/systemd/system/${UNIT_NAME}`),
    unitDropInDir: at(`/etc/systemd/system/${UNIT_NAME}.d`),
    pathsConf: at(`/etc/systemd/system/${UNIT_NAME}.d/paths.conf`),
    writePathsConf: at('/opt/openclaw-pool/systemd/write-paths-conf.mjs'),
    dropInDir: at(`/run/systemd/system/${UNIT_NAME}.d`),
    dropIn: at(`/run/systemd/system/${UNIT_NAME}.d/50-openclaw-pool-migrate.conf`),
    shippedUnit: at(`/opt/openclaw-pool/systemd/${UNIT_NAME}`),
    configDir: at('/etc/openclaw-pool'),
    poolEnv: at('/etc/openclaw-pool/pool.env'),
    backupRoot: at('/var/lib/openclaw-pool/migrated-from-bash'),
  };
}
