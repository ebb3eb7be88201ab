import { fail, ok, type Result } from '../util/errors.ts';
import type { PublicBundle } from './bundle.ts';
import { isBytes, isUint } from './cbor.ts';
import { isNodeId } from './fingerprint.ts';
import type { Identity } from './identity.ts';
import { isEd25519Point } from './keys.ts';
import { decodeSigned, encodeSigned, type VerifyKey } from './verify.ts';

/**
 * AdmissionCertificate: the bootstrap server's signed statement that a node
 * key may join the ring at a given 160-bit node id (seed 000 section IV.2,
 * the bootstrap admits each adapter). Assigning ids centrally keeps a node
 * from choosing where it sits in the ring. Compact: CBOR [body, sig], body =
 * {v, id, key, iat, exp}, about 150 bytes.
 */
export const ADMISSION_CONTEXT = 'secp2psip/admission';
const VERSION = 1;
/** Allowed clock difference between issuer and verifier for issue times. */
export const ADMISSION_SKEW_MS = 60_000;

export interface Admission {
  nodeId: string;
  /** Raw 32-byte Ed25519 key of the admitted node. */
  nodeKey: Uint8Array;
  issuedAt: number;
  expiresAt: number;
}

/** Sign an admission for `nodeKey` at `nodeId` (40 hex), valid `ttlMs` from `now` (wall-clock ms). */
export function issueAdmission(
  issuer: Identity,
  nodeKey: Uint8Array | PublicBundle,
  nodeId: string,
  ttlMs: number,
  now: number = Date.now(),
): Uint8Array {
  const key = nodeKey instanceof Uint8Array ? nodeKey : nodeKey.sig;
  if (!isEd25519Point(key)) throw new TypeError('issueAdmission: node key must be a raw Ed25519 key');
  if (!isNodeId(nodeId)) throw new TypeError('issueAdmission: node id must be 40 lower-case hex');
  if (!isUint(ttlMs) || ttlMs <= 0 || !isUint(now)) throw new TypeError('issueAdmission: bad ttl or time');
  const body = {
    v: VERSION,
    id: Buffer.from(nodeId, 'hex'),
    key,
    iat: Math.floor(now),
    exp: Math.floor(now + ttlMs),
  };
  return encodeSigned(issuer, ADMISSION_CONTEXT, body);
}

/** Check an admission against the issuer's key at wall-clock `now`. Never throws. */
export function verifyAdmission(bytes: Uint8Array, issuerKey: VerifyKey, now: number): Result<Admission> {
  const r = decodeSigned(bytes, issuerKey, ADMISSION_CONTEXT);
  if (!r.ok) return fail(`admission: ${r.error}`);
  const b = r.value as Record<string, unknown>;
  if (!b || typeof b !== 'object' || b.v !== VERSION) return fail('admission: unsupported version');
  if (Object.keys(b).length !== 5) return fail('admission: unexpected fields');
  if (!isBytes(b.id, 20) || !isBytes(b.key, 32) || !isUint(b.iat) || !isUint(b.exp)) {
    return fail('admission: malformed fields');
  }
  if (b.exp <= b.iat) return fail('admission: expires before it is issued');
  if (b.iat > now + ADMISSION_SKEW_MS) return fail('admission: issued in the future');
  if (now >= b.exp) return fail('admission: expired');
  if (!isEd25519Point(b.key)) return fail('admission: bad node key');
  return ok({
    nodeId: Buffer.from(b.id).toString('hex'),
    nodeKey: new Uint8Array(b.key),
    issuedAt: b.iat,
    expiresAt: b.exp,
  });
}
