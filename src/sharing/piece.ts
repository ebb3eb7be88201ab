import { createHash } from 'node:crypto';
import { canonicalEncode, isBytes, isUint, safeDecode } from '../identity/cbor.ts';
import { fail, ok, type Result } from '../util/errors.ts';

/**
 * One Shamir piece of a user's public key (seed 000 section IV.2: PubKeyPiece_i,
 * stored in the ring under `Username.i`, 1 <= i <= n).
 *
 * - `data` is in the shamir-secret-sharing share format: one y byte per secret
 *   byte, then the x coordinate as the last byte. Here x = index always, so a
 *   holder cannot move its piece to another evaluation point.
 * - `check` is a domain-separated SHA-256 of the whole secret. The secret is a
 *   public key, so the digest reveals nothing worth hiding; it lets the robust
 *   decoder refuse a consistent fake polynomial that a minority of holders
 *   could otherwise pass off as the key.
 */
export interface PubKeyPiece {
  index: number;
  data: Uint8Array;
  check: Uint8Array;
}

export const MAX_PIECES = 255;
/** Largest secret we split: an RSA-4096 SubjectPublicKeyInfo is about 550 bytes. */
export const MAX_SECRET_BYTES = 2048;
const PIECE_VERSION = 1;
const CHECK_PREFIX = Buffer.from('SECP2PSIP-PIECE-CHECK-V1\0', 'latin1');

export function pieceCheck(secret: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(CHECK_PREFIX).update(secret).digest());
}

/** The structural rules every usable piece meets (they do not prove it is honest). */
export function isWellFormedPiece(p: PubKeyPiece): boolean {
  return (
    p !== null &&
    typeof p === 'object' &&
    isUint(p.index, MAX_PIECES) &&
    p.index >= 1 &&
    isBytes(p.data) &&
    p.data.length >= 2 &&
    p.data.length <= MAX_SECRET_BYTES + 1 &&
    p.data[p.data.length - 1] === p.index &&
    isBytes(p.check, 32)
  );
}

/** Wire form: CBOR [1, index, data, check]. */
export function encodePiece(p: PubKeyPiece): Uint8Array {
  return canonicalEncode([PIECE_VERSION, p.index, p.data, p.check]);
}

export function decodePiece(bytes: Uint8Array): Result<PubKeyPiece> {
  const r = safeDecode(bytes, MAX_SECRET_BYTES + 128);
  if (!r.ok) return r;
  const v = r.value;
  if (!Array.isArray(v) || v.length !== 4) return fail('piece: expected [version, index, data, check]');
  if (v[0] !== PIECE_VERSION) return fail(`piece: unsupported version ${String(v[0])}`);
  const piece: PubKeyPiece = { index: v[1] as number, data: v[2] as Uint8Array, check: v[3] as Uint8Array };
  if (!isWellFormedPiece(piece)) return fail('piece: malformed (index, data or check)');
  return ok({ index: piece.index, data: new Uint8Array(piece.data), check: new Uint8Array(piece.check) });
}

/**
 * Decode the value stored under `Username.<index>`. Never fails: bytes that do
 * not decode, or a piece claiming another index, come back as a piece the
 * robust decoder will name as bad (so the holder is reported, not ignored).
 */
export function decodePieceAt(index: number, bytes: Uint8Array): PubKeyPiece {
  const r = decodePiece(bytes);
  if (r.ok && r.value.index === index) return r.value;
  return { index, data: new Uint8Array(0), check: new Uint8Array(0) };
}
