/**
 * What SecP2PSIP keeps in the Chord ring, and who may write it.
 *
 * Keys follow seed 000 IV.2: `Username` -> the user's location record,
 * `Username.i` -> PubKeyPiece i (1 <= i <= n). Only a bootstrap may write
 * them. The Chord STORE path does not see who sent a record, and records move
 * between ordinary nodes on replication and hand-off, so write authority
 * travels with the record: the value is wrapped in an envelope signed by a
 * bootstrap key, and every storing node's validator refuses a record whose
 * envelope is not signed by a known bootstrap.
 *
 * Readers do not need the envelope signature: the location record is signed
 * by the user, and pieces follow the seed's k-of-n model (robust rebuilding
 * protects against bad holders, see key-lookup.ts).
 */
import { decode as cborDecode, encode as cborEncode } from 'cborg';
import { type Admission, verifyAdmission } from '../identity/admission.ts';
import type { Identity } from '../identity/identity.ts';
import { verifyEd25519 } from '../identity/signature.ts';
import type { DhtRecord } from '../dht/store/record.ts';
import { newestWins, type RecordValidator } from '../dht/store/validators.ts';
import type { NodeRef } from '../rpc/types.ts';
import { fail, ok, type Result } from '../util/errors.ts';

export const RING_WRITE_CONTEXT = 'secp2psip/ring-write/v1';
/** Records live a day and are put again by their bootstrap well before that. */
export const RING_TTL_MS = 24 * 3600_000;

export interface RingEnvelope {
  /** The payload: an encoded location record or piece. */
  p: Uint8Array;
  /** When the bootstrap signed it (wall ms): of two valid envelopes for one key, the later wins. */
  at: number;
  /** Raw Ed25519 key of the signing bootstrap. */
  by: Uint8Array;
  sig: Uint8Array;
}

function tbs(key: string, p: Uint8Array, at: number): Uint8Array {
  return cborEncode([key, p, at]);
}

export function sealRingValue(bootstrap: Identity, key: string, payload: Uint8Array, at: number): Uint8Array {
  const sig = bootstrap.sign(RING_WRITE_CONTEXT, tbs(key, payload, at));
  return cborEncode({ p: payload, at, by: bootstrap.bundle.sig, sig });
}

/** Parse an envelope from untrusted bytes. Never throws; does not check the signature. */
export function openRingValue(value: unknown): Result<RingEnvelope> {
  if (!(value instanceof Uint8Array)) return fail('ring value is not bytes');
  try {
    const o = cborDecode(value, { strict: true, rejectDuplicateMapKeys: true }) as Record<string, unknown>;
    if (typeof o !== 'object' || o === null) return fail('ring value is not a map');
    const { p, at, by, sig } = o;
    if (!(p instanceof Uint8Array) || !(by instanceof Uint8Array) || by.length !== 32) return fail('bad envelope');
    if (!(sig instanceof Uint8Array) || sig.length !== 64) return fail('bad envelope signature');
    if (typeof at !== 'number' || !Number.isSafeInteger(at) || at < 0) return fail('bad envelope time');
    return ok({ p, at, by, sig });
  } catch {
    return fail('ring value is not CBOR');
  }
}

export function envelopeSignedBy(key: string, env: RingEnvelope, bootstrapKeys: Iterable<Uint8Array>): boolean {
  let known = false;
  for (const k of bootstrapKeys) if (Buffer.from(k).equals(Buffer.from(env.by))) known = true;
  return known && verifyEd25519(env.by, RING_WRITE_CONTEXT, tbs(key, env.p, env.at), env.sig);
}

/**
 * Validator for the default namespace of a SecP2PSIP ring: the usual TTL and
 * clock checks, plus a bootstrap signature on the envelope. `bootstrapKeys`
 * is read on every call, so a node that learns more bootstraps later can add
 * them to the same collection.
 */
export function bootstrapWrittenValidator(bootstrapKeys: Iterable<Uint8Array>, base: RecordValidator): RecordValidator {
  const at = (r: DhtRecord): number => {
    const e = openRingValue(r.value);
    return e.ok ? e.value.at : -1;
  };
  return {
    validate(r, now) {
      const why = base.validate(r, now);
      if (why !== null) return why;
      const env = openRingValue(r.value);
      if (!env.ok) return env.error;
      if (!envelopeSignedBy(r.key, env.value, bootstrapKeys)) return 'not written by a known bootstrap';
      return null;
    },
    select(a, b) {
      const ta = at(a);
      const tb = at(b);
      if (ta !== tb) return ta > tb ? a : b;
      return newestWins(a, b);
    },
  };
}

/** The admission a known bootstrap signed, or undefined. */
export function admittedNode(
  admission: Uint8Array,
  bootstrapKeys: Iterable<Uint8Array>,
  now: number,
): Admission | undefined {
  for (const k of bootstrapKeys) {
    const a = verifyAdmission(admission, k, now);
    if (a.ok) return a.value;
  }
  return undefined;
}

/**
 * Ref policy for every member of a SecP2PSIP ring: a NodeRef is accepted only
 * if its admission certificate, signed by a known bootstrap, binds its id to
 * its key (nobody picks their own place in the ring). Results are cached by
 * the ChordNode; `clock` gives wall time for expiry.
 */
export function admittedRef(bootstrapKeys: Iterable<Uint8Array>, wallNow: () => number): (ref: NodeRef) => boolean {
  return (ref) => {
    if (!(ref.admission instanceof Uint8Array)) return false;
    const a = admittedNode(ref.admission, bootstrapKeys, wallNow());
    return a !== undefined && a.nodeId === ref.id && Buffer.from(a.nodeKey).equals(Buffer.from(ref.key));
  };
}

export function pieceKey(name: string, i: number): string {
  return `${name}.${i}`;
}
