import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { type BrowserContext, chromium } from 'playwright-core';

/** Debian's chromium (scripts/provision-chromium.sh); the suite never uses a downloaded browser. */
export const CHROMIUM = process.env.POOL_TEST_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Screenshots a browser test keeps (gitignored; CI can collect them). */
export const ARTIFACTS_DIR = new URL('../../test-artifacts/', import.meta.url).pathname;

/**
 * Whether Chromium is here. Under CI=true a missing browser fails the suite: a green run must have
 * driven a real browser. Elsewhere the suite is skipped with a visible line.
 */
export async function requireChromium(): Promise<boolean> {
  const version = await execa(CHROMIUM, ['--version'], { reject: false, timeout: 20_000 });
  if (!version.failed) return true;
  const message = `browser tests cannot run: ${CHROMIUM} --version failed (${(version.stderr || version.shortMessage || '').trim().split('\n')[0]}). Run 'sudo scripts/provision-chromium.sh' first.`;
  if (process.env.CI === 'true') throw new Error(message);
  console.warn(`SKIPPED: ${message}`);
  return false;
}

/** Headless Chromium with a fresh, empty profile (`--user-data-dir`), removed on close. */
export async function launchChromium(viewport: { width: number; height: number }): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profile = await mkdtemp(join(tmpdir(), 'pool-chromium-'));
  // Playwright passes the profile as --user-data-dir and adds --remote-debugging-pipe itself.
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport });
  return {
    context,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

export async function artifactPath(name: string): Promise<string> {
  await mkdir(ARTIFACTS_DIR, { recursive: true });
  return join(ARTIFACTS_DIR, name);
}
