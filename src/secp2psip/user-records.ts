/**
 * The two values a registration puts in the ring for a user (seed 000 IV.2): the location record under
 * `Username` (where the user's adapter is, signed by the user) and the key bundle the bootstrap splits into
 * the pieces under `Username.i`. Their encodings, their decoders of untrusted bytes (a Result, never a throw)
 * and the bytes a location record's signature covers live here, beside each other, so the adapter that signs
 * and every reader that checks cannot drift apart. Both also travel inside messages (REGISTER carries the
 * location record, WHOIS_OK a bundle): messages.ts reads them with the readers below.
 */
import { encode as cborEncode } from 'cborg';
import { fail, ok, type Result } from '../util/errors.ts';
import { Bad, bytes, decodeCbor, int, LIMITS, NAME_RE, type Obj, optBytes, str, strip } from './wire-fields.ts';

/** The user's public key bundle: what the bootstrap splits into pieces (seed IV.2 "Public Key Distribution"). */
export interface UserKeyBundle {
  name: string;
  /**
   * The user's signing key as SubjectPublicKeyInfo DER: Ed25519 in relaxed mode; in strict mode the key
   * of the user's certificate (RSA >= 2048 or ECDSA P-256). Verifies SignedHash.
   */
  signKey: Uint8Array;
  /** Raw 32-byte X25519 public key: protected mode seals to it. */
  sealKey: Uint8Array;
  /** When the bootstrap bound this key to the name (ms since epoch); lets a TOFU store tell a re-registration. */
  registeredAt: number;
}

/** `Username` -> where the user's adapter is, signed by the user (not by the bootstrap). */
export interface LocationRecord {
  name: string;
  /** The adapter's node key and RPC address: SECP2PSIP INVITE goes there over pinned TLS. */
  nodeKey: Uint8Array;
  nodeAddr: string;
  /** The adapter's SIP host:port (seed Table 1 "IP"). */
  sipAddr: string;
  time: number;
  seq: number;
  /** Signature by the user's signKey over `locationTbs`. */
  sig: Uint8Array;
  /** Admission certificate binding the adapter's ring id to nodeKey (signed by a bootstrap; self-verifying). */
  admission?: Uint8Array;
}

export function plainLocation(r: LocationRecord): Record<string, unknown> {
  return strip({ ...r });
}

export function encodeLocation(r: LocationRecord): Uint8Array {
  return cborEncode(plainLocation(r));
}

/** Canonical bytes of a key bundle: the secret the bootstrap splits into pieces. */
export function encodeBundle(b: UserKeyBundle): Uint8Array {
  return cborEncode({ name: b.name, signKey: b.signKey, sealKey: b.sealKey, registeredAt: b.registeredAt });
}

export function readLocation(o: Obj): LocationRecord {
  return strip({
    name: str(o, 'name', LIMITS.name, NAME_RE),
    nodeKey: bytes(o, 'nodeKey', 32),
    nodeAddr: str(o, 'nodeAddr', LIMITS.addr),
    sipAddr: str(o, 'sipAddr', LIMITS.addr),
    time: int(o, 'time'),
    seq: int(o, 'seq'),
    sig: bytes(o, 'sig', undefined, LIMITS.sig),
    admission: optBytes(o, 'admission', LIMITS.cert),
  }) as unknown as LocationRecord;
}

export function readBundle(o: Obj): UserKeyBundle {
  return {
    name: str(o, 'name', LIMITS.name, NAME_RE),
    signKey: bytes(o, 'signKey', undefined, LIMITS.spki),
    sealKey: bytes(o, 'sealKey', 32),
    registeredAt: int(o, 'registeredAt'),
  };
}

export function decodeLocation(buf: unknown): Result<LocationRecord> {
  const r = decodeCbor(buf);
  if (!r.ok) return r;
  try {
    return ok(readLocation(r.value));
  } catch (e) {
    return fail(e instanceof Bad ? e.message : 'malformed location record');
  }
}

export function decodeBundle(buf: unknown): Result<UserKeyBundle> {
  const r = decodeCbor(buf);
  if (!r.ok) return r;
  try {
    return ok(readBundle(r.value));
  } catch (e) {
    return fail(e instanceof Bad ? e.message : 'malformed key bundle');
  }
}

export function locationTbs(r: Omit<LocationRecord, 'sig' | 'admission'>): Uint8Array {
  return cborEncode(['LOCATION', r.name, r.nodeKey, r.nodeAddr, r.sipAddr, r.time, r.seq]);
}
