import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toJson } from './json.js';

/** Where `npm run build` (scripts/build-ui.mjs) writes the status page, relative to the package root. */
export const STATUS_PAGE_PATH = 'dist/ui/status-page.html';

/** A reply prepared once at start-up and sent as is to every `GET /` and `GET /ui`. */
export interface PreparedReply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

const hashOf = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

function inlineHashes(html: string, tag: 'script' | 'style'): string {
  const hashes = [...html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))].map((match) => hashOf(match[1] ?? ''));
  return hashes.length === 0 ? "'none'" : hashes.join(' ');
}

/**
 * The page's Content-Security-Policy: nothing loads but its own inline script and style (allowed
 * by hash, so an injected one would not run), and it may only talk back to the bridge it came from.
 */
export function contentSecurityPolicy(html: string): string {
  return [
    "default-src 'none'",
    `script-src ${inlineHashes(html, 'script')}`,
    `style-src ${inlineHashes(html, 'style')}`,
    "connect-src 'self'",
    "img-src data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

export function pageReply(html: string): PreparedReply {
  const body = Buffer.from(html, 'utf8');
  return {
    status: 200,
    headers: {
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Length': String(body.length),
      'Content-Security-Policy': contentSecurityPolicy(html),
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      // The page is the same until the daemon is upgraded; revalidating costs one small request.
      'Cache-Control': 'no-cache',
    },
    body,
  };
}

/** What `GET /` answers when the page could not be loaded: the reason, as every bridge error says it. */
export function pageUnavailableReply(reason: string): PreparedReply {
  const body = Buffer.from(toJson({ error: `status page unavailable: ${reason}` }), 'utf8');
  return { status: 503, headers: { 'Content-Type': 'application/json', 'Content-Length': String(body.length) }, body };
}

/** The nearest folder above this module with a package.json: the checkout, or the install (/opt/openclaw-pool). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  return dir;
}

/**
 * Reads the built page once; the daemon runs from dist/ and the tests from src/, and both find it
 * under the package root. A missing page is reported, not fatal: the pool works without it.
 */
export async function loadStatusPage(file?: string): Promise<PreparedReply> {
  const path = file ?? join(packageRoot(), STATUS_PAGE_PATH);
  let html: string;
  try {
    html = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(code === 'ENOENT' ? `${path} is missing (run npm run build)` : `cannot read ${path}: ${(error as Error).message}`);
  }
  return pageReply(html);
}
