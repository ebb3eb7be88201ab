import { fail, ok, type Result } from '../util/errors.ts';
import { canonicalEncode, isBytes, safeDecode } from './cbor.ts';
import { isEd25519Point } from './keys.ts';

/**
 * The public half of an Identity: an Ed25519 key that signs and an X25519 key
 * that others seal to (HPKE, RFC 9180). Both are 32-byte raw keys.
 */
export interface PublicBundle {
  sig: Uint8Array;
  kem: Uint8Array;
}

const BUNDLE_VERSION = 1;

/** Deterministic encoding: CBOR array [1, sig, kem] (70 bytes). */
export function encodeBundle(b: PublicBundle): Uint8Array {
  return canonicalEncode([BUNDLE_VERSION, b.sig, b.kem]);
}

/** Decode untrusted bytes. The Ed25519 key must be a point of the curve; any 32 bytes are an X25519 key (RFC 7748 section 5). */
export function decodeBundle(bytes: Uint8Array): Result<PublicBundle> {
  const r = safeDecode(bytes, 256);
  if (!r.ok) return r;
  const v = r.value;
  if (!Array.isArray(v) || v.length !== 3) return fail('bundle: expected [version, sig, kem]');
  if (v[0] !== BUNDLE_VERSION) return fail(`bundle: unsupported version ${String(v[0])}`);
  if (!isBytes(v[1], 32) || !isBytes(v[2], 32)) return fail('bundle: keys must be 32-byte strings');
  if (!isEd25519Point(v[1])) return fail('bundle: bad Ed25519 key');
  return ok({ sig: new Uint8Array(v[1]), kem: new Uint8Array(v[2]) });
}
