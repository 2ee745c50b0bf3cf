/** 42 → "42s", 200 → "3m", 7300 → "2h", 200000 → "2d": whole units, rounded down. */
function compact(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

/** "just now", "42s ago", "3m ago", "2h ago", "5d ago": how long ago `iso` was at `now` (shared by poolctl and the status page). */
export function ago(iso: string, now: number): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  return seconds < 5 ? 'just now' : `${compact(seconds)} ago`;
}

/** "3m ago", or in work mode with what counted as the activity, "3m ago (work)" (poolctl and the status page). */
export function lastActiveAgo(lastActive: string, reason: string | undefined, now: number): string {
  return reason === undefined ? ago(lastActive, now) : `${ago(lastActive, now)} (${reason})`;
}

/** "45s", "12m", "3h": how long until `iso`, never negative. */
export function left(iso: string, now: number): string {
  return compact(Math.max(0, Math.floor((Date.parse(iso) - now) / 1000)));
}
