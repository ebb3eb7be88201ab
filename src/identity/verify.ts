import type { KeyObject } from 'node:crypto';
import { fail, ok, type Result } from '../util/errors.ts';
import type { PublicBundle } from './bundle.ts';
import { canonicalEncode, isBytes, safeDecode } from './cbor.ts';
import { rawPublicToKeyObject } from './keys.ts';
import { verifyWithKey } from './signature.ts';

/** Anything a signature can be checked against: a bundle, a raw 32-byte Ed25519 key, or a KeyObject. */
export type VerifyKey = PublicBundle | Uint8Array | KeyObject;

function toKeyObject(key: VerifyKey): KeyObject | undefined {
  if (key instanceof Uint8Array) return rawPublicToKeyObject('ed25519', key);
  if (key && typeof key === 'object' && 'sig' in key && 'kem' in key) return rawPublicToKeyObject('ed25519', key.sig);
  if (key && typeof key === 'object' && 'asymmetricKeyType' in key && key.type === 'public') return key;
  return undefined;
}

/** Verify a domain-separated signature. Never throws. */
export function verify(key: VerifyKey, context: string, message: Uint8Array, sig: Uint8Array): boolean {
  const k = toKeyObject(key);
  return k ? verifyWithKey(k, context, message, sig) : false;
}

/** Verify a signature over canonical CBOR, then decode it (strictly). */
export function verifyObject(key: VerifyKey, context: string, body: Uint8Array, sig: Uint8Array): Result<unknown> {
  if (!verify(key, context, body, sig)) return fail('bad signature');
  const r = safeDecode(body);
  if (!r.ok) return r;
  // Only the canonical encoding is accepted, so one value has one signed form.
  if (Buffer.compare(canonicalEncode(r.value), body) !== 0) return fail('body is not canonical CBOR');
  return r;
}

/** A self-contained signed value: CBOR [body, sig], body being canonical CBOR of the value. */
export function encodeSigned(
  signer: { signObject(c: string, v: unknown): { body: Uint8Array; sig: Uint8Array } },
  context: string,
  value: unknown,
): Uint8Array {
  const { body, sig } = signer.signObject(context, value);
  return canonicalEncode([body, sig]);
}

export function decodeSigned(bytes: Uint8Array, key: VerifyKey, context: string): Result<unknown> {
  const r = safeDecode(bytes);
  if (!r.ok) return r;
  const v = r.value;
  if (!Array.isArray(v) || v.length !== 2 || !isBytes(v[0]) || !isBytes(v[1])) return fail('expected [body, sig]');
  const out = verifyObject(key, context, v[0], v[1]);
  return out.ok ? ok(out.value) : out;
}
