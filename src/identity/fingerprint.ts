import { createHash } from 'node:crypto';
import type { PublicBundle } from './bundle.ts';

/** SHA-1 as 40 lower-case hex: the WhanauSIP identity is SHA-1 of the public key (seed 003, section 3.1). */
export function sha1Hex(data: Uint8Array): string {
  return createHash('sha1').update(data).digest('hex');
}

/** SHA-256 as 64 lower-case hex: fingerprints everywhere else (seed 000 uses SHA-256 for signed hashes). */
export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest());
}

/**
 * A 160-bit identifier (40 hex) derived from a key: SHA-1 of the raw 32-byte
 * Ed25519 public key (for a bundle, of its signing key), as Chord derives node
 * ids (Stoica et al., section 4.2) and as WhanauSIP derives a user's identity
 * (seed 003: key = SHA-1 of the public key). Using the signing key alone means
 * a peer's id can be computed from the key its TLS certificate presents.
 */
export function nodeIdFromKey(key: Uint8Array | PublicBundle): string {
  return sha1Hex(key instanceof Uint8Array ? key : key.sig);
}

export const NODE_ID_HEX = /^[0-9a-f]{40}$/;

export function isNodeId(v: unknown): v is string {
  return typeof v === 'string' && NODE_ID_HEX.test(v);
}
