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
