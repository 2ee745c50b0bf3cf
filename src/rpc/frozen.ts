/**
 * Text made from a frozen value is made once per value: the pool hands every caller the same
 * frozen `status` reply until the pool changes, so its JSON is not rebuilt for each of them.
 * Values that are not frozen are converted on every call.
 */
export function oncePerFrozenValue(toText: (value: unknown) => string): (value: unknown) => string {
  const texts = new WeakMap<object, string>();
  return (value) => {
    if (typeof value !== 'object' || value === null || !Object.isFrozen(value)) return toText(value);
    let text = texts.get(value);
    if (text === undefined) texts.set(value, (text = toText(value)));
    return text;
  };
}
