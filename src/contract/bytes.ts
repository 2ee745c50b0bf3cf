/** Binary units, as Docker reads `mem_limit`: `5500M` is 5500 MiB. */
const BYTE_UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** A size in bytes with an optional unit (`6G`, `5500M`, `330MiB`, `2147483648`, `512b`); undefined for anything else. */
export function parseByteSize(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(?:([KMGT])(?:i?B)?|B)?\s*$/i.exec(text);
  return match === null ? undefined : Math.round(Number(match[1]) * BYTE_UNITS[(match[2] ?? '').toUpperCase()]!);
}

/** `23.5 GiB`, `330 MiB`, `352 KiB`, `0 B` */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 || value >= 100 ? Math.round(value) : Number(value.toFixed(1))} ${units[unit]}`;
}
