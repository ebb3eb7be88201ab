/** Ring placement as the tests check it, computed from the members' ids alone. */
import { keyPosition } from '../../src/dht/store/ring-id.ts';

/** Ids of the key's owner (first id at or after its position, wrapping) and the `count - 1` members after it. */
export function holderIds(sortedIds: readonly string[], key: string, count: number): string[] {
  const pos = keyPosition(key);
  const o = Math.max(
    0,
    sortedIds.findIndex((id) => id >= pos),
  );
  return Array.from({ length: Math.min(count, sortedIds.length) }, (_, d) => sortedIds[(o + d) % sortedIds.length]);
}
