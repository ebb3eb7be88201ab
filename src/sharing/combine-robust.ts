import { OverlayError } from '../util/errors.ts';
import { dot, evalPoly, lagrangeWeights } from './gf256.ts';
import { isWellFormedPiece, type PubKeyPiece, pieceCheck } from './piece.ts';
import { berlekampWelch } from './reed-solomon.ts';
import { assertThreshold } from './split.ts';
import { diagnose } from './diagnose.ts';

export interface RobustResult {
  secret: Uint8Array;
  /** Indices of received pieces that are malformed or disagree with the rebuilt key. */
  bad: number[];
  /** Indices 1..n with no piece received. */
  missing: number[];
  /** Indices whose pieces agree with the rebuilt key. */
  agreeing: number[];
}

/**
 * Robust mode: rebuild the key from all received pieces, correcting bad ones.
 *
 * Let m be the number of well-formed pieces received (malformed ones, and
 * indices with conflicting copies, are named bad and treated as erasures) and
 * T = ceil((m + k) / 2). The result is accepted only if some polynomial P of
 * degree < k agrees with at least T pieces that also carry the digest of P(0).
 * Two different polynomials of degree < k share at most k - 1 points, so at
 * most one P can reach T: the answer is unique, and it is found whenever at
 * most m - T = floor((m - k) / 2) of the m pieces are bad (Reed-Solomon
 * unique decoding, Berlekamp-Welch per byte).
 *
 * Beyond that the call fails closed with SHARING_PIECES_DISAGREE. A wrong key
 * would need T pieces all carrying the digest of that wrong key, i.e. T
 * corrupted pieces: a majority of holders that could equally have forged a
 * complete honest-looking split.
 */
export function combineRobust(pieces: readonly PubKeyPiece[], n: number, k: number): RobustResult {
  assertThreshold(n, k);
  const groups = new Map<number, PubKeyPiece[]>();
  for (const p of pieces) {
    if (!p || typeof p !== 'object' || !Number.isInteger(p.index) || p.index < 1 || p.index > n) continue;
    const g = groups.get(p.index);
    if (g) g.push(p);
    else groups.set(p.index, [p]);
  }
  const received = [...groups.keys()].sort((a, b) => a - b);
  const missing: number[] = [];
  for (let i = 1; i <= n; i++) if (!groups.has(i)) missing.push(i);

  const invalid: number[] = [];
  const valid: PubKeyPiece[] = [];
  for (const index of received) {
    const g = groups.get(index) as PubKeyPiece[];
    const first = g[0];
    const consistent = g.every((p) => sameBytes(p.data, first.data) && sameBytes(p.check, first.check));
    if (consistent && isWellFormedPiece(first)) valid.push(first);
    else invalid.push(index);
  }

  const m = valid.length;
  const need = Math.ceil((m + k) / 2);
  const failWith = (reason: string): never => {
    const d = diagnose(valid, k);
    const disagreeing = [...d.disagreeing, ...invalid].sort((a, b) => a - b);
    throw new OverlayError('SHARING_PIECES_DISAGREE', reason, {
      disagreeing,
      largestConsistent: d.largestConsistent,
      invalid,
      missing,
      need,
    });
  };
  if (m < k) {
    throw new OverlayError('SHARING_NOT_ENOUGH_PIECES', `${m} usable pieces, k=${k}`, {
      usable: valid.map((p) => p.index),
      invalid,
      missing,
      k,
    });
  }

  // The digest (and secret length) carried by at least T pieces; T > m/2, so at most one qualifies.
  const votes = new Map<string, PubKeyPiece[]>();
  for (const p of valid) {
    const key = `${p.data.length}:${Buffer.from(p.check).toString('hex')}`;
    const list = votes.get(key);
    if (list) list.push(p);
    else votes.set(key, [p]);
  }
  let carriers: PubKeyPiece[] | undefined;
  for (const list of votes.values()) if (list.length >= need) carriers = list;
  if (!carriers) return failWith(`no digest is carried by ${need} of ${m} pieces`);

  const c = carriers.length;
  const e = c - need; // errors we may still correct among the carriers
  const len = carriers[0].data.length - 1;
  const xs = Uint8Array.from(carriers, (p) => p.index);
  const ys = new Uint8Array(c);
  const by = new Uint8Array(k); // ys at the basis
  const wrong = new Uint8Array(c); // 1 = piece disagrees in some byte
  let wrongCount = 0;
  const secret = new Uint8Array(len);
  let basis = firstAgreeing(wrong, k);
  let weights = basisWeights(xs, basis);

  for (let b = 0; b < len; b++) {
    for (let i = 0; i < c; i++) ys[i] = carriers[i].data[b];
    // Fast path: interpolate through k pieces believed good and count who disagrees.
    for (let j = 0; j < k; j++) by[j] = ys[basis[j]];
    let coeffsAt0 = dot(weights.at0, by);
    let errs = byteErrors(weights.all, ys, by, wrong);
    if (wrongCount + errs.length > e) {
      const p = berlekampWelch(xs, ys, k, e);
      if (!p) return failWith(`byte ${b} cannot be corrected`);
      coeffsAt0 = p[0];
      errs = [];
      for (let i = 0; i < c; i++) if (!wrong[i] && evalPoly(p, xs[i]) !== ys[i]) errs.push(i);
    }
    if (errs.length > 0) {
      for (const i of errs) wrong[i] = 1;
      wrongCount += errs.length;
      if (wrongCount > e) return failWith(`more than ${e} disagreeing pieces`);
      basis = firstAgreeing(wrong, k);
      weights = basisWeights(xs, basis);
    }
    secret[b] = coeffsAt0;
  }

  if (!sameBytes(pieceCheck(secret), carriers[0].check)) return failWith('rebuilt key does not match its digest');
  const agreeing = carriers.filter((_, i) => !wrong[i]).map((p) => p.index);
  const good = new Set(agreeing);
  const bad = received.filter((i) => !good.has(i));
  return { secret, bad, missing, agreeing };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a instanceof Uint8Array && b instanceof Uint8Array && Buffer.compare(a, b) === 0;
}

function firstAgreeing(wrong: Uint8Array, k: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < wrong.length && out.length < k; i++) if (!wrong[i]) out.push(i);
  return out;
}

interface BasisWeights {
  at0: Uint8Array;
  /** Lagrange weights from the basis to every carrier's x. */
  all: Uint8Array[];
}

function basisWeights(xs: Uint8Array, basis: number[]): BasisWeights {
  const bx = Uint8Array.from(basis, (i) => xs[i]);
  return { at0: lagrangeWeights(bx, 0), all: Array.from(xs, (x) => lagrangeWeights(bx, x)) };
}

/** Carriers (not already known wrong) whose byte differs from the polynomial through the basis. */
function byteErrors(all: Uint8Array[], ys: Uint8Array, by: Uint8Array, wrong: Uint8Array): number[] {
  const errs: number[] = [];
  for (let i = 0; i < ys.length; i++) if (!wrong[i] && dot(all[i], by) !== ys[i]) errs.push(i);
  return errs;
}
