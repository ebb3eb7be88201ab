import { createPublicKey, type KeyObject } from 'node:crypto';

/**
 * Raw <-> KeyObject conversions for the two curve25519 key kinds. Raw public
 * keys are 32 bytes (RFC 8032 section 5.1.5, RFC 7748 section 5). The JWK
 * form (RFC 8037) carries exactly the raw bytes, and node converts it several
 * times faster than DER (OpenSSL 3's DER decoders and encoders cost hundreds
 * of microseconds per key), which matters on every seal and open.
 */
const CRV = { ed25519: 'Ed25519', x25519: 'X25519' } as const;

export type CurveKind = keyof typeof CRV;

/** Bounded cache: verifying the same peer's signatures should not re-parse its key each time. */
const publicCache = new Map<string, KeyObject>();
const PUBLIC_CACHE_MAX = 4096;

function b64u(raw: Uint8Array): string {
  return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64url');
}

function importPublic(kind: CurveKind, raw: Uint8Array): KeyObject | undefined {
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: CRV[kind], x: b64u(raw) }, format: 'jwk' });
  } catch {
    return undefined;
  }
}

/** `cache: false` for one-time keys (HPKE encapsulations), which would only evict useful entries. */
export function rawPublicToKeyObject(kind: CurveKind, raw: Uint8Array, cache = true): KeyObject | undefined {
  if (!(raw instanceof Uint8Array) || raw.length !== 32) return undefined;
  if (!cache) return importPublic(kind, raw);
  const id = kind + b64u(raw);
  const hit = publicCache.get(id);
  if (hit) return hit;
  const key = importPublic(kind, raw);
  if (!key) return undefined;
  if (publicCache.size >= PUBLIC_CACHE_MAX) publicCache.delete(publicCache.keys().next().value as string);
  publicCache.set(id, key);
  return key;
}

export function publicKeyToRaw(key: KeyObject): Uint8Array {
  return new Uint8Array(Buffer.from(key.export({ format: 'jwk' }).x as string, 'base64url'));
}

export function privateKeyToRaw(key: KeyObject): Uint8Array {
  return new Uint8Array(Buffer.from(key.export({ format: 'jwk' }).d as string, 'base64url'));
}

const P = 2n ** 255n - 19n;
const D = (P - ((121665n * modPow(121666n, P - 2n)) % P)) % P; // d = -121665/121666 (RFC 8032 section 5.1)

function modPow(b: bigint, e: bigint): bigint {
  let r = 1n;
  let x = ((b % P) + P) % P;
  let k = e;
  while (k > 0n) {
    if (k & 1n) r = (r * x) % P;
    x = (x * x) % P;
    k >>= 1n;
  }
  return r;
}

/**
 * Whether 32 bytes decode to a point of edwards25519 (RFC 8032 section
 * 5.1.3). OpenSSL accepts any 32 bytes as an Ed25519 public key and only
 * fails later at verification; decoders of untrusted keys check here.
 */
export function isEd25519Point(raw: Uint8Array): boolean {
  if (!(raw instanceof Uint8Array) || raw.length !== 32) return false;
  // The check is a 252-bit modular exponentiation in BigInt (about 0.3 ms):
  // keys seen before (the same admissions arrive in every lookup reply) are remembered.
  const id = b64u(raw);
  if (pointsSeen.has(id)) return true;
  if (!decodesToPoint(raw)) return false;
  if (pointsSeen.size >= PUBLIC_CACHE_MAX) pointsSeen.delete(pointsSeen.values().next().value as string);
  pointsSeen.add(id);
  return true;
}

const pointsSeen = new Set<string>();

function decodesToPoint(raw: Uint8Array): boolean {
  const x0 = raw[31] >> 7;
  let y = 0n;
  for (let i = 31; i >= 0; i--) y = (y << 8n) | BigInt(i === 31 ? raw[i] & 0x7f : raw[i]);
  if (y >= P) return false;
  const y2 = (y * y) % P;
  const u = (y2 - 1n + P) % P;
  const v = (D * y2 + 1n) % P;
  // x = u v^3 (u v^7)^((p-5)/8); a square root of u/v exists iff v x^2 = +-u.
  const v3 = (((v * v) % P) * v) % P;
  const x = (((u * v3) % P) * modPow((u * ((((v3 * v3) % P) * v) % P)) % P, (P - 5n) / 8n)) % P;
  const vx2 = (((v * x) % P) * x) % P;
  if (vx2 !== u && vx2 !== (P - u) % P) return false;
  return !(u === 0n && x0 === 1); // x = 0 with the sign bit set is not canonical
}
