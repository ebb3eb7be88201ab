import { dot, lagrangeWeights } from './gf256.ts';
import { type PubKeyPiece, pieceCheck } from './piece.ts';

/** Beyond this many k-subsets the search is skipped (it runs only on the failure path). */
const MAX_SUBSETS = 1000;

export interface Diagnosis {
  /** Pieces that disagree with the largest mutually consistent group found. */
  disagreeing: number[];
  /** That group (empty when none was found or the search was skipped). */
  largestConsistent: number[];
}

/**
 * For an error report only: find the largest set of pieces that lie on one
 * polynomial of degree < k and carry the digest of its value at 0, by trying
 * the k-subsets of each group of pieces carrying the same digest. When no
 * group is found, or the search would be too long, every piece is reported.
 */
export function diagnose(pieces: readonly PubKeyPiece[], k: number): Diagnosis {
  const all = pieces.map((p) => p.index);
  const groups = new Map<string, PubKeyPiece[]>();
  for (const p of pieces) {
    const key = `${p.data.length}:${Buffer.from(p.check).toString('hex')}`;
    const g = groups.get(key);
    if (g) g.push(p);
    else groups.set(key, [p]);
  }
  let budget = 0;
  for (const g of groups.values()) if (g.length >= k) budget += binomial(g.length, k);
  if (budget > MAX_SUBSETS) return { disagreeing: all, largestConsistent: [] };
  let best: number[] = [];
  for (const g of groups.values()) {
    if (g.length < k || g.length <= best.length) continue;
    const subset = Array.from({ length: k }, (_, i) => i);
    do {
      const found = consistentWith(g, subset, k, best.length);
      if (found.length > best.length) best = found;
    } while (best.length < g.length && nextSubset(subset, g.length));
  }
  const inBest = new Set(best);
  return { disagreeing: all.filter((i) => !inBest.has(i)), largestConsistent: best };
}

/**
 * Pieces of the group on the polynomial through group[subset], if it beats
 * `atLeast` and its value at 0 has the group's digest; otherwise []. Checking
 * agreement first (most pieces differ at their first byte) keeps the hash for
 * the rare candidates that matter.
 */
function consistentWith(group: readonly PubKeyPiece[], subset: number[], k: number, atLeast: number): number[] {
  const len = group[0].data.length - 1;
  const xs = new Uint8Array(k);
  const inSubset = new Set(subset);
  for (let j = 0; j < k; j++) xs[j] = group[subset[j]].index;
  const ys = new Uint8Array(k);
  const out: number[] = [];
  for (let g = 0; g < group.length; g++) {
    const p = group[g];
    if (!inSubset.has(g)) {
      const w = lagrangeWeights(xs, p.index);
      let agrees = true;
      for (let b = 0; b < len && agrees; b++) {
        for (let j = 0; j < k; j++) ys[j] = group[subset[j]].data[b];
        agrees = dot(w, ys) === p.data[b];
      }
      if (!agrees) continue;
    }
    out.push(p.index);
  }
  if (out.length <= atLeast) return [];
  const at0 = lagrangeWeights(xs, 0);
  const secret = new Uint8Array(len);
  for (let b = 0; b < len; b++) {
    for (let j = 0; j < k; j++) ys[j] = group[subset[j]].data[b];
    secret[b] = dot(at0, ys);
  }
  return Buffer.compare(pieceCheck(secret), group[0].check) === 0 ? out : [];
}

function nextSubset(s: number[], n: number): boolean {
  const k = s.length;
  let i = k - 1;
  while (i >= 0 && s[i] === n - k + i) i--;
  if (i < 0) return false;
  s[i]++;
  for (let j = i + 1; j < k; j++) s[j] = s[j - 1] + 1;
  return true;
}

function binomial(n: number, k: number): number {
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return Math.round(r);
}
