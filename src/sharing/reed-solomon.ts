import { exactDivide, MUL, solveLinear } from './gf256.ts';

/**
 * Berlekamp-Welch decoding of one byte position (Welch and Berlekamp, US
 * patent 4,633,470; see also Gemmell and Sudan, "Highly resilient correctors
 * for polynomials", 1992). The points (xs[i], ys[i]) are evaluations of a
 * polynomial P of degree < k with at most e of them wrong, c = xs.length and
 * k + 2e <= c. Find E (monic, degree e) and Q (degree < k + e) with
 * Q(x_i) = y_i * E(x_i) for every i; then P = Q / E.
 *
 * Returns P's coefficients (lowest degree first), or undefined when no such P
 * exists (more than e errors at this position).
 */
export function berlekampWelch(xs: Uint8Array, ys: Uint8Array, k: number, e: number): Uint8Array | undefined {
  const c = xs.length;
  if (k + 2 * e > c) throw new RangeError('berlekampWelch: k + 2e must not exceed the number of points');
  const cols = k + 2 * e;
  const qLen = k + e;
  const a = new Uint8Array(c * cols);
  const b = new Uint8Array(c);
  for (let i = 0; i < c; i++) {
    const x = xs[i];
    const y = ys[i];
    let p = 1; // x^j
    const row = i * cols;
    for (let j = 0; j < qLen; j++) {
      a[row + j] = p;
      if (j < e) a[row + qLen + j] = MUL[(y << 8) | p];
      if (j === e) b[i] = MUL[(y << 8) | p]; // right-hand side y_i * x_i^e (E is monic)
      p = MUL[(p << 8) | x];
    }
  }
  const z = solveLinear(a, b, c, cols);
  if (!z) return undefined;
  const q = z.subarray(0, qLen);
  const eq = new Uint8Array(e + 1);
  eq.set(z.subarray(qLen, qLen + e), 0);
  eq[e] = 1;
  const p = exactDivide(q, eq);
  if (!p) return undefined;
  for (let i = k; i < p.length; i++) if (p[i] !== 0) return undefined;
  return p.subarray(0, k);
}
