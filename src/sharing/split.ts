import { split } from 'shamir-secret-sharing';
import { OverlayError } from '../util/errors.ts';
import { dot, lagrangeWeights } from './gf256.ts';
import { MAX_PIECES, MAX_SECRET_BYTES, type PubKeyPiece, pieceCheck } from './piece.ts';

export function assertThreshold(n: number, k: number): void {
  if (!Number.isInteger(n) || !Number.isInteger(k) || k < 2 || n < k || n > MAX_PIECES) {
    throw new OverlayError('BAD_CONFIG', `need integers 2 <= k <= n <= ${MAX_PIECES}, got k=${k} n=${n}`);
  }
}

/**
 * Split a public key into n PubKeyPieces, any k of which rebuild it (seed 000
 * section IV.2, Shamir 1979). The random polynomial comes from the audited
 * shamir-secret-sharing package; its shares sit at random x coordinates, so we
 * re-evaluate the same polynomial at x = 1..n (Lagrange interpolation through
 * k of its shares). Piece i thus lives at x = i and the library's own
 * combine() still rebuilds the secret from any k pieces.
 */
export async function splitKey(secret: Uint8Array, n: number, k: number): Promise<PubKeyPiece[]> {
  assertThreshold(n, k);
  if (!(secret instanceof Uint8Array) || secret.length < 1 || secret.length > MAX_SECRET_BYTES) {
    throw new OverlayError('BAD_CONFIG', `secret must be 1..${MAX_SECRET_BYTES} bytes`);
  }
  const shares = await split(secret, n, k);
  const len = secret.length;
  const basis = shares.slice(0, k);
  const xs = Uint8Array.from(basis, (s) => s[len]);
  const ys = new Uint8Array(k);
  const check = pieceCheck(secret);
  const pieces: PubKeyPiece[] = [];
  for (let index = 1; index <= n; index++) {
    const w = lagrangeWeights(xs, index);
    const data = new Uint8Array(len + 1);
    for (let b = 0; b < len; b++) {
      for (let j = 0; j < k; j++) ys[j] = basis[j][b];
      data[b] = dot(w, ys);
    }
    data[len] = index;
    pieces.push({ index, data, check: new Uint8Array(check) });
  }
  // Wipe the library's shares at random coordinates: only the pieces at x = 1..n leave here.
  for (const s of shares) s.fill(0);
  return pieces;
}
