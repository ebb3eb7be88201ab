/**
 * The Whanau key space is a ring. Keys are either 40-hex lowercase strings
 * (protocol nodes: fixed width, so string order is numeric order) or plain
 * numbers in [0, 1) (the simulator's positions). Every procedure is written
 * once against this ordering and used by both drivers.
 */
export type RingKey = string | number;

/** First index j in the sorted array with a[j] >= x (a.length if none). */
export function lowerBound<K extends RingKey>(a: ArrayLike<K>, x: K, lo = 0, hi = a.length): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index j in the sorted array with a[j] > x (a.length if none). */
export function upperBound<K extends RingKey>(a: ArrayLike<K>, x: K, lo = 0, hi = a.length): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** x0 ≼ x ≼ key on the ring: x lies on the clockwise arc from x0 to key, both ends included. */
export function onArc<K extends RingKey>(x0: K, x: K, key: K): boolean {
  return x0 <= key ? x0 <= x && x <= key : x >= x0 || x <= key;
}

/**
 * The entries of a sorted array lying on the arc [x0, key], as a circular
 * index range: entry k of the range is a[(start + k) % a.length].
 */
export function arcRange<K extends RingKey>(a: ArrayLike<K>, x0: K, key: K): { start: number; count: number } {
  const n = a.length;
  if (n === 0) return { start: 0, count: 0 };
  const start = lowerBound(a, x0);
  const end = upperBound(a, key);
  if (x0 <= key) return { start, count: Math.max(0, end - start) };
  return { start: start % n, count: n - start + end };
}

/** Sort comparator for ring keys (numbers or fixed-width hex). */
export function compareKeys<K extends RingKey>(a: K, b: K): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export const HEX_KEY = /^[0-9a-f]{40}$/;

/** A uniformly random 160-bit key in 40 lowercase hex. */
export function randomHexKey(bytes: Uint8Array): string {
  return Buffer.from(bytes.subarray(0, 20)).toString('hex');
}
