/**
 * Wire times are ISO 8601 UTC with a `Z` and second precision (SPEC §2): `2026-02-28T05:17:04Z`.
 * Internally times are epoch milliseconds; this is the one place they are formatted for the wire.
 */
export function formatWireTime(epochMs: number): string {
  return new Date(Math.floor(epochMs / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** Parses an ISO 8601 time with an explicit zone; undefined for anything else, impossible dates included. */
export function parseWireTime(text: string): number | undefined {
  const match = ISO_TIME.exec(text);
  if (!match) return undefined;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  // Date.parse rolls 2026-02-30 over into March; a calendar check refuses it instead.
  if (new Date(Date.UTC(year, month - 1, day)).getUTCDate() !== day) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A duration as people write it on a command line: `30s`, `5m`, `1h30m`, `2d`, `250ms`, or a bare
 * number of seconds; undefined for anything else (a unit that is not one of ms, s, m, h, d, a
 * negative value, an empty string).
 */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed) * 1000;
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(trimmed)) return undefined;
  let total = 0;
  for (const [, amount, , unit] of trimmed.matchAll(/(\d+(\.\d+)?)(ms|s|m|h|d)/g)) total += Number(amount) * (DURATION_UNITS[unit as string] ?? NaN);
  return Number.isFinite(total) ? total : undefined;
}
