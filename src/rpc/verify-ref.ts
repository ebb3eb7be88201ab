/**
 * Checks that a caller's claimed NodeRef id is bound to the key it proved in
 * the TLS handshake. Two bindings exist: the id is derived from the key
 * (SHA-1 of the raw Ed25519 key, WhanauSIP and self-assigned Chord ids), or
 * an admission certificate from the bootstrap server assigns the id to the
 * key (seed 000 section IV.2). Endpoints take one of these as `verifyRef`.
 */
import { verifyAdmission } from '../identity/admission.ts';
import { nodeIdFromKey } from '../identity/fingerprint.ts';
import type { VerifyKey } from '../identity/verify.ts';
import type { Clock } from '../util/clock.ts';
import type { NodeRef } from './types.ts';
import { bytesEqual } from '../util/bytes.ts';

/** The id is derived from the key. */
export function defaultVerifyRef(ref: NodeRef): boolean {
  return ref.id === nodeIdFromKey(ref.key);
}

/**
 * The id is derived from the key, or `ref.admission` is a valid, unexpired
 * admission by `issuerKey` for exactly this id and key.
 */
export function admissionVerifyRef(issuerKey: VerifyKey, clock: Clock): (ref: NodeRef) => boolean {
  return (ref) => {
    if (defaultVerifyRef(ref)) return true;
    if (ref.admission === undefined) return false;
    const a = verifyAdmission(ref.admission, issuerKey, clock.wallNow());
    return a.ok && a.value.nodeId === ref.id && bytesEqual(a.value.nodeKey, ref.key);
  };
}
