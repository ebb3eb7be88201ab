import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';

/**
 * Raw <-> KeyObject conversions for the two curve25519 key kinds. Raw public
 * keys are 32 bytes (RFC 8032 section 5.1.5, RFC 7748 section 5); the SPKI and
 * PKCS#8 forms differ from the raw key only by a fixed DER prefix (RFC 8410).
 */
const SPKI_PREFIX = {
  ed25519: Buffer.from('302a300506032b6570032100', 'hex'),
  x25519: Buffer.from('302a300506032b656e032100', 'hex'),
} as const;
const PKCS8_PREFIX = {
  ed25519: Buffer.from('302e020100300506032b657004220420', 'hex'),
  x25519: Buffer.from('302e020100300506032b656e04220420', 'hex'),
} as const;

export type CurveKind = keyof typeof SPKI_PREFIX;

/** Bounded cache: verifying the same peer's signatures should not re-parse its key each time. */
const publicCache = new Map<string, KeyObject>();
const PUBLIC_CACHE_MAX = 4096;

export function rawPublicToKeyObject(kind: CurveKind, raw: Uint8Array): KeyObject | undefined {
  if (!(raw instanceof Uint8Array) || raw.length !== 32) return undefined;
  const id = kind + Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64');
  const hit = publicCache.get(id);
  if (hit) return hit;
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX[kind], raw]), format: 'der', type: 'spki' });
  } catch {
    return undefined;
  }
  if (publicCache.size >= PUBLIC_CACHE_MAX) publicCache.delete(publicCache.keys().next().value as string);
  publicCache.set(id, key);
  return key;
}

export function rawPrivateToKeyObject(kind: CurveKind, raw: Uint8Array): KeyObject | undefined {
  if (!(raw instanceof Uint8Array) || raw.length !== 32) return undefined;
  try {
    return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX[kind], raw]), format: 'der', type: 'pkcs8' });
  } catch {
    return undefined;
  }
}

export function publicKeyToRaw(key: KeyObject): Uint8Array {
  const der = key.export({ format: 'der', type: 'spki' });
  return new Uint8Array(der.subarray(der.length - 32));
}

export function privateKeyToRaw(key: KeyObject): Uint8Array {
  const der = key.export({ format: 'der', type: 'pkcs8' });
  return new Uint8Array(der.subarray(der.length - 32));
}
