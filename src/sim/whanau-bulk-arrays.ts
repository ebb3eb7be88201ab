/**
 * The typed-array steps of the simulator's fast path (whanau-bulk.ts): sorting
 * a layer's fingers by id with their nodes, and finding where a successor
 * sample starts in one node's slice of record ranks.
 */

/** Sort ids[lo..hi] ascending, moving nodes[] with them (quicksort, insertion sort below 16). */
export function sortPairs(ids: Float64Array, nodes: Int32Array, lo: number, hi: number): void {
  while (hi - lo > 16) {
    const mid = (lo + hi) >>> 1;
    // median of three as pivot
    const a = ids[lo];
    const b = ids[mid];
    const c = ids[hi];
    const pivot = a < b ? (b < c ? b : a < c ? c : a) : a < c ? a : b < c ? c : b;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (ids[i] < pivot) i++;
      while (ids[j] > pivot) j--;
      if (i <= j) {
        const x = ids[i];
        ids[i] = ids[j];
        ids[j] = x;
        const y = nodes[i];
        nodes[i] = nodes[j];
        nodes[j] = y;
        i++;
        j--;
      }
    }
    // recurse into the smaller side, loop on the larger
    if (j - lo < hi - i) {
      sortPairs(ids, nodes, lo, j);
      lo = i;
    } else {
      sortPairs(ids, nodes, i, hi);
      hi = j;
    }
  }
  for (let i = lo + 1; i <= hi; i++) {
    const x = ids[i];
    const y = nodes[i];
    let j = i - 1;
    while (j >= lo && ids[j] > x) {
      ids[j + 1] = ids[j];
      nodes[j + 1] = nodes[j];
      j--;
    }
    ids[j + 1] = x;
    nodes[j + 1] = y;
  }
}

/**
 * successorsStart (procedures.ts) specialised to a slice of ranks in [0, n):
 * the same lower bound, found by a short scan from `from`, the interpolated
 * index (see `interpolate`), because a db is a uniform sample of ranks and a
 * binary search would miss the cache on almost every probe (this runs r_s
 * times per node and layer).
 */
export function int32SuccessorsStart(a: Int32Array, x: number, lo: number, hi: number, from: number): number {
  let j = from;
  while (j > lo && a[j - 1] >= x) j--;
  while (j < hi && a[j] < x) j++;
  return j === hi ? 0 : j - lo;
}

/** Where rank x would sit in a uniform sample of len ranks of [0, n) stored at [lo, lo + len). */
export function interpolate(x: number, lo: number, len: number, n: number): number {
  return lo + Math.min(len - 1, Math.floor((x / n) * len));
}
