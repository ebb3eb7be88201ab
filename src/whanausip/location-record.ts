import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { decode, encode } from 'cborg';
import { fail, ok, type Result } from '../util/errors.ts';

/**
 * Self-certifying location record of WhanauSIP (seed 003, Figure 4-2 and
 * section 4.5): the published value (a SIP contact), creation time, TTL, the
 * publisher's host and port and its public key, all signed by the publisher.
 * The DHT key is SHA-1 of the public key in 40 lowercase hex, so anyone can
 * check that a record belongs to the key it is stored under.
 */
export interface LocationRecord {
  /** Published value, e.g. `sip:<hash>@203.0.113.7:5060`. */
  value: string;
  /** Creation time, ms since the epoch. */
  created: number;
  /** Time to live in seconds. */
  ttl: number;
  host: string;
  port: number;
  /** Raw 32-byte Ed25519 public key of the publisher. */
  publicKey: Uint8Array;
  /** Ed25519 signature over the domain-separated encoding of all other fields. */
  signature: Uint8Array;
}

export type UnsignedLocationRecord = Omit<LocationRecord, 'signature' | 'publicKey'>;

/** Signatures bind this context so a record signature cannot be replayed as any other signed message. */
export const LOCATION_RECORD_CONTEXT = 'secp2psip/whanausip/location-record/v1';
/** Largest encoded record accepted from the network. */
export const MAX_RECORD_BYTES = 1024;
const MAX_VALUE_CHARS = 512;
const MAX_HOST_CHARS = 255;
/** A record may claim a creation time at most this far in the future (clock skew). */
export const MAX_FUTURE_SKEW_MS = 60_000;

/**
 * Minimal Ed25519 signer over raw keys. Kept local and tiny so it can be
 * swapped for the shared identity module without touching record logic.
 */
export interface RecordSigner {
  readonly publicKey: Uint8Array;
  sign(data: Uint8Array): Uint8Array;
}

const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

function publicKeyObject(raw: Uint8Array): KeyObject | undefined {
  if (raw.length !== 32) return undefined;
  try {
    return createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' });
  } catch {
    return undefined;
  }
}

/** An Ed25519 signer from a raw 32-byte seed, or a fresh key pair when no seed is given. */
export function ed25519Signer(seed?: Uint8Array): RecordSigner {
  let priv: KeyObject;
  if (seed) {
    if (seed.length !== 32) throw new RangeError('Ed25519 seed must be 32 bytes');
    priv = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  } else {
    priv = generateKeyPairSync('ed25519').privateKey;
  }
  const spki = createPublicKey(priv).export({ format: 'der', type: 'spki' });
  const publicKey = new Uint8Array(spki.subarray(spki.length - 32));
  return { publicKey, sign: (data) => new Uint8Array(sign(null, data, priv)) };
}

/** DHT key of a public key: SHA-1 in 40 lowercase hex (seed 003 section 3.2.1). */
export function recordKey(publicKey: Uint8Array): string {
  return createHash('sha1').update(publicKey).digest('hex');
}

function signedPart(r: Omit<LocationRecord, 'signature'>): Uint8Array {
  const body = encode({
    value: r.value,
    created: r.created,
    ttl: r.ttl,
    host: r.host,
    port: r.port,
    publicKey: r.publicKey,
  });
  const ctx = new TextEncoder().encode(LOCATION_RECORD_CONTEXT);
  const out = new Uint8Array(ctx.length + 1 + body.length);
  out.set(ctx, 0);
  out[ctx.length] = 0;
  out.set(body, ctx.length + 1);
  return out;
}

export function signLocationRecord(fields: UnsignedLocationRecord, signer: RecordSigner): LocationRecord {
  const unsigned = { ...fields, publicKey: signer.publicKey };
  return { ...unsigned, signature: signer.sign(signedPart(unsigned)) };
}

/** Deterministic CBOR encoding: the same record always gives the same bytes. */
export function encodeLocationRecord(r: LocationRecord): Uint8Array {
  return encode({
    value: r.value,
    created: r.created,
    ttl: r.ttl,
    host: r.host,
    port: r.port,
    publicKey: r.publicKey,
    signature: r.signature,
  });
}

const FIELDS = ['value', 'created', 'ttl', 'host', 'port', 'publicKey', 'signature'];

/** Decode untrusted bytes: shape only, no signature check. Never throws. */
export function decodeLocationRecord(bytes: Uint8Array): Result<LocationRecord> {
  if (!(bytes instanceof Uint8Array)) return fail('record is not bytes');
  if (bytes.length > MAX_RECORD_BYTES) return fail('record too large');
  let o: unknown;
  try {
    o = decode(bytes, { strict: true, rejectDuplicateMapKeys: true });
  } catch (e) {
    return fail(`record is not valid CBOR: ${(e as Error).message}`);
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return fail('record is not a map');
  const m = o as Record<string, unknown>;
  const keys = Object.keys(m);
  if (keys.length !== FIELDS.length || !FIELDS.every((f) => keys.includes(f))) return fail('record has wrong fields');
  const { value, created, ttl, host, port, publicKey, signature } = m;
  if (typeof value !== 'string' || value.length > MAX_VALUE_CHARS) return fail('bad value');
  if (typeof created !== 'number' || !Number.isSafeInteger(created) || created < 0) return fail('bad creation time');
  if (typeof ttl !== 'number' || !Number.isSafeInteger(ttl) || ttl <= 0) return fail('bad ttl');
  if (typeof host !== 'string' || host.length === 0 || host.length > MAX_HOST_CHARS) return fail('bad host');
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return fail('bad port');
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) return fail('bad public key');
  if (!(signature instanceof Uint8Array) || signature.length !== 64) return fail('bad signature length');
  return ok({ value, created, ttl, host, port, publicKey, signature });
}

/** Verify the publisher's signature over the record. */
export function verifyLocationRecordSignature(r: LocationRecord): boolean {
  const pk = publicKeyObject(r.publicKey);
  if (!pk) return false;
  try {
    return verify(null, signedPart(r), pk, r.signature);
  } catch {
    return false;
  }
}

export function isExpired(r: LocationRecord, nowMs: number): boolean {
  return nowMs >= r.created + r.ttl * 1000;
}

/**
 * The WhanauSIP key/value checker (seed 003 section 4.5): decode, verify the
 * signature with the included public key, compare SHA-1 of that key with the
 * DHT key, and refuse expired records or ones created too far in the future.
 */
export function checkLocationRecord(key: string, bytes: Uint8Array, nowMs: number): Result<LocationRecord> {
  const d = decodeLocationRecord(bytes);
  if (!d.ok) return d;
  const r = d.value;
  if (recordKey(r.publicKey) !== key) return fail('key is not the SHA-1 of the record public key');
  if (r.created > nowMs + MAX_FUTURE_SKEW_MS) return fail('record created in the future');
  if (isExpired(r, nowMs)) return fail('record expired');
  if (!verifyLocationRecordSignature(r)) return fail('bad signature');
  return ok(r);
}

/** Adapter to the DHT's generic checker shape: (key, value, now) -> accept? */
export const locationRecordChecker = {
  check(key: string, value: Uint8Array, nowMs: number): boolean {
    return checkLocationRecord(key, value, nowMs).ok;
  },
};
