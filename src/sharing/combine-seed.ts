import { combine } from 'shamir-secret-sharing';
import { OverlayError } from '../util/errors.ts';
import { type Random, shuffle } from '../util/random.ts';
import type { PubKeyPiece } from './piece.ts';

/**
 * The k random piece indices an adapter fetches in the seed's scheme
 * (seed 000 section IV.3, "Public Key Reconstruction": for count = k, pick a
 * random j and retrieve Username.j).
 */
export function choosePieceIndices(n: number, k: number, rnd: Random): number[] {
  const all = Array.from({ length: n }, (_, i) => i + 1);
  return shuffle(all, rnd)
    .slice(0, k)
    .sort((a, b) => a - b);
}

/**
 * Seed mode: combine k pieces chosen at random with the library's combine(),
 * with no check at all, exactly as the seed does. A single bad piece among the
 * chosen k yields a wrong key silently; kept so the difference from the robust
 * mode can be measured. Throws OverlayError on too few or unusable pieces.
 */
export async function combineSeed(pieces: readonly PubKeyPiece[], k: number, rnd: Random): Promise<Uint8Array> {
  const byIndex = new Map<number, PubKeyPiece>();
  for (const p of pieces) if (p && Number.isInteger(p.index) && !byIndex.has(p.index)) byIndex.set(p.index, p);
  if (byIndex.size < k) {
    throw new OverlayError('SHARING_NOT_ENOUGH_PIECES', `${byIndex.size} of ${k} pieces`, {
      have: [...byIndex.keys()].sort((a, b) => a - b),
      k,
    });
  }
  const chosen = shuffle([...byIndex.values()], rnd).slice(0, k);
  try {
    return await combine(chosen.map((p) => p.data));
  } catch (e) {
    // The library refuses duplicate x coordinates and unequal lengths.
    throw new OverlayError('SHARING_PIECES_DISAGREE', (e as Error).message, {
      disagreeing: chosen.map((p) => p.index).sort((a, b) => a - b),
    });
  }
}
