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
 *
 * One signature per user's record set. A registration writes n + 1 records
 * at once (location and pieces), and a reader that reads them straight from
 * their holders (ring-fetch.ts) must check every envelope: n + 1 Ed25519
 * verifications, the largest cost of a first call to a user. So the
 * bootstrap signs them together (sealRingSet): a Merkle tree (RFC 6962
 * section 2.1 hashing: 0x00 before a leaf, 0x01 before two children) over
 * the leaves SHA-256(0x00 | CBOR [key, payload, time]), one signature over
 * its root and the time under its own context, and each envelope carries
 * its record's path to the root (`set`). A holder still checks its own
 * records alone (path plus the one signature); a reader of the whole set
 * verifies the signature once and only hashes for the other records (the
 * roots verified are remembered like single envelopes). A path that folds to
 * the signed root names exactly a (key, payload, time) the bootstrap signed,
 * as a single signature would; envelopes without `set` keep the one-record
 * signature and are still accepted.
 */
import { createHash } from 'node:crypto';
import { encode as cborEncode } from 'cborg';
import { ADMISSION_SKEW_MS, type Admission, verifyAdmission } from '../identity/admission.ts';
import type { Identity } from '../identity/identity.ts';
import { verifyEd25519 } from '../identity/signature.ts';
import { type DhtRecord, expiresAt } from '../dht/store/record.ts';
import { newestWins, type RecordValidator } from '../dht/store/validators.ts';
import { decodePayload } from '../rpc/codec.ts';
import type { NodeRef } from '../rpc/types.ts';
import { fail, ok, type Result } from '../util/errors.ts';
import { bytesEqual } from '../util/bytes.ts';

export const RING_WRITE_CONTEXT = 'secp2psip/ring-write/v1';
/** A bootstrap's signature over the Merkle root of one user's record set. */
export const RING_SET_CONTEXT = 'secp2psip/ring-write-set/v1';
/** One step of a Merkle path: 1 byte (0: the sibling is on the left, 1: on the right) and the sibling's hash. */
const STEP = 33;
/** Longest path accepted: sets of up to 2^16 records (a user has n + 1 <= 256). */
const MAX_STEPS = 16;
/**
 * Records live a day after their bootstrap signed them (the store holds no
 * copy longer, see bootstrapWrittenValidator) and are signed and put again
 * by their bootstrap well before that.
 */
export const RING_TTL_MS = 24 * 3600_000;

export interface RingEnvelope {
  /** The payload: an encoded location record or piece. */
  p: Uint8Array;
  /** When the bootstrap signed it (wall ms): of two valid envelopes for one key, the later wins. */
  at: number;
  /** Raw Ed25519 key of the signing bootstrap. */
  by: Uint8Array;
  sig: Uint8Array;
  /** Set-signed envelope: the record's Merkle path to the signed root (STEP bytes per level). */
  set?: Uint8Array;
}

function tbs(key: string, p: Uint8Array, at: number): Uint8Array {
  return cborEncode([key, p, at]);
}

/**
 * Sign `payload` for `key` as a bootstrap. When `validator` is the signing
 * node's own bootstrap-written validator, the envelope is entered in its
 * verified memory (the bootstrap does not verify what it just signed).
 */
export function sealRingValue(
  bootstrap: Identity,
  key: string,
  payload: Uint8Array,
  at: number,
  validator?: RecordValidator,
): Uint8Array {
  const sig = bootstrap.sign(RING_WRITE_CONTEXT, tbs(key, payload, at));
  const by = bootstrap.bundle.sig;
  if (validator) verifiedBy.get(validator)?.signedHere(key, { p: payload, at, by, sig });
  return cborEncode({ p: payload, at, by, sig });
}

function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

const LEAF = new Uint8Array([0]);
const NODE = new Uint8Array([1]);

function leafHash(key: string, p: Uint8Array, at: number): Uint8Array {
  return sha256(LEAF, tbs(key, p, at));
}

/** The root a set-signed envelope's path leads to from its own leaf; undefined without a well-formed path. */
function rootOf(key: string, env: RingEnvelope): Uint8Array | undefined {
  const path = env.set;
  if (!path || path.length % STEP !== 0 || path.length > STEP * MAX_STEPS) return undefined;
  let h = leafHash(key, env.p, env.at);
  for (let o = 0; o < path.length; o += STEP) {
    const sib = path.subarray(o + 1, o + STEP);
    if (path[o] === 0) h = sha256(NODE, sib, h);
    else if (path[o] === 1) h = sha256(NODE, h, sib);
    else return undefined;
  }
  return h;
}

function setTbs(root: Uint8Array, at: number): Uint8Array {
  return cborEncode([root, at]);
}

/**
 * Sign a set of records together as a bootstrap (see the module comment):
 * one envelope per entry, in order, all with one signature over the root.
 * When `validatorFor` gives the signing node's own bootstrap-written
 * validator, the envelopes are entered in its verified memory.
 */
export function sealRingSet(
  bootstrap: Identity,
  entries: ReadonlyArray<{ key: string; payload: Uint8Array }>,
  at: number,
  validatorFor?: (key: string) => RecordValidator,
): Uint8Array[] {
  if (entries.length === 0) return [];
  // Levels bottom-up; an odd node out goes up unchanged (no step on its path at that level).
  const levels: Uint8Array[][] = [entries.map((e) => leafHash(e.key, e.payload, at))];
  while (levels[levels.length - 1].length > 1) {
    const below = levels[levels.length - 1];
    const up: Uint8Array[] = [];
    for (let i = 0; i < below.length; i += 2)
      up.push(i + 1 < below.length ? sha256(NODE, below[i], below[i + 1]) : below[i]);
    levels.push(up);
  }
  const root = levels[levels.length - 1][0];
  const sig = bootstrap.sign(RING_SET_CONTEXT, setTbs(root, at));
  const by = bootstrap.bundle.sig;
  return entries.map((e, idx) => {
    const steps: Uint8Array[] = [];
    let i = idx;
    for (let l = 0; l < levels.length - 1; l++) {
      const row = levels[l];
      const sib = i % 2 === 0 ? i + 1 : i - 1;
      if (sib < row.length) steps.push(Uint8Array.of(i % 2 === 0 ? 1 : 0), row[sib]);
      i >>= 1;
    }
    const set = new Uint8Array(Buffer.concat(steps));
    const env: RingEnvelope = { p: e.payload, at, by, sig, set };
    if (validatorFor) verifiedBy.get(validatorFor(e.key))?.signedHere(e.key, env);
    return cborEncode(env);
  });
}

/**
 * Parse an envelope from untrusted bytes. Never throws; does not check the signature.
 *
 * Read with the RPC payload decoder (rpc/codec.ts decodePayload: a one-pass reader, cborg for anything
 * outside its subset), not cborg's token tree: an envelope is read on every STORE, FETCH reply, replica and
 * choice between two copies, about 5 % of a call set-up's CPU that way. Its verdicts are cborg's strict ones
 * (minimal integers and lengths, no duplicate keys, nothing after the item) and in three points stricter
 * than the plain cborg call this used: no indefinite lengths, no `undefined`, no map key "__proto__". A
 * bootstrap never writes any of the three: its envelopes are cborg's deterministic encoding of
 * { p, at, by, sig, set? } (sealRingValue, sealRingSet: definite lengths only, no undefined field, fixed
 * keys), so every envelope a bootstrap made reads as before. Bytes with one of them are at best another
 * encoding of a bootstrap's fields (what is signed is tbs/setTbs, not the envelope bytes), and refusing
 * them only refuses a copy no bootstrap made.
 */
export function openRingValue(value: unknown): Result<RingEnvelope> {
  if (!(value instanceof Uint8Array)) return fail('ring value is not bytes');
  return readEnvelope(value);
}

/**
 * The last few envelopes a validator read, per value object and its exact bytes: a record's value is read by
 * the validator's check, its expiry and each choice between two copies (a replica arriving, a hand-off), in
 * a row. A hit is taken only when the value's bytes are still exactly those read (memcmp against a private
 * copy), so it is the verdict a fresh read of the same bytes gives; the decoded fields are copies
 * (decodePayload), not views of the value. Kept small and per validator rather than per value for the whole
 * process: a reader reads each fetched value once (ring-fetch.ts), and a process-wide map of every value
 * cost more per miss (about twice a read) than the reads it saved.
 */
class RecentEnvelopes {
  private readonly values: (Uint8Array | undefined)[] = new Array(RECENT).fill(undefined);
  private readonly copies: Uint8Array[] = new Array(RECENT);
  private readonly results: Result<RingEnvelope>[] = new Array(RECENT);
  private next = 0;

  open(value: unknown): Result<RingEnvelope> {
    if (!(value instanceof Uint8Array)) return fail('ring value is not bytes');
    for (let i = 0; i < RECENT; i++)
      if (this.values[i] === value && bytesEqual(this.copies[i], value)) return this.results[i];
    const result = readEnvelope(value);
    const i = this.next;
    this.next = (i + 1) % RECENT;
    this.values[i] = value;
    // A copy whatever the view: Buffer.prototype.slice would share the bytes.
    this.copies[i] = new Uint8Array(value);
    this.results[i] = result;
    return result;
  }
}
const RECENT = 4;

function readEnvelope(value: Uint8Array): Result<RingEnvelope> {
  const d = decodePayload(value);
  if (!d.ok) return fail('ring value is not CBOR');
  const o = d.value as Record<string, unknown>;
  if (typeof o !== 'object' || o === null) return fail('ring value is not a map');
  const { p, at, by, sig, set } = o;
  if (!(p instanceof Uint8Array) || !(by instanceof Uint8Array) || by.length !== 32) return fail('bad envelope');
  if (!(sig instanceof Uint8Array) || sig.length !== 64) return fail('bad envelope signature');
  if (typeof at !== 'number' || !Number.isSafeInteger(at) || at < 0) return fail('bad envelope time');
  if (set === undefined) return ok({ p, at, by, sig });
  if (!(set instanceof Uint8Array) || set.length % STEP !== 0 || set.length > STEP * MAX_STEPS)
    return fail('bad envelope set path');
  return ok({ p, at, by, sig, set });
}

export function envelopeSignedBy(key: string, env: RingEnvelope, bootstrapKeys: Iterable<Uint8Array>): boolean {
  let known = false;
  for (const k of bootstrapKeys) if (bytesEqual(k, env.by)) known = true;
  return known && signatureHolds(key, env);
}

/** The envelope's own signature check, one record or a set (no memory, no known-bootstrap test). */
function signatureHolds(key: string, env: RingEnvelope): boolean {
  if (!env.set) return verifyEd25519(env.by, RING_WRITE_CONTEXT, tbs(key, env.p, env.at), env.sig);
  const root = rootOf(key, env);
  return root !== undefined && verifyEd25519(env.by, RING_SET_CONTEXT, setTbs(root, env.at), env.sig);
}

/**
 * Envelopes whose signature this node has already checked. A node sees the
 * same records again and again (replication every tick, hand-off, repeated
 * fetches of the same user), and an Ed25519 verification costs far more than
 * the rest of a STORE or FETCH. An entry is reused only for the very same
 * (key, signer, time, payload) bytes under the very same signature, so a hit
 * is exactly a signature that verified before; the known-bootstrap test is
 * still made on every call.
 */
export class VerifiedEnvelopes {
  private readonly seen = new Map<
    string,
    { key: string; p: Uint8Array; at: number; by: Uint8Array; set?: Uint8Array }
  >();
  /**
   * Set signatures that verified at this node, by signature: the root and time they signed, and the
   * signer (a node holding several records of one set checks its signature once). Nodes sharing a
   * process share what verified through identity/signature.ts, which remembers every Ed25519
   * verification that succeeded, but not a signature the process made itself.
   */
  private readonly roots = new Map<string, { root: Uint8Array; at: number; by: Uint8Array }>();
  constructor(private readonly max = 8192) {}

  check(key: string, env: RingEnvelope, bootstrapKeys: Iterable<Uint8Array>): boolean {
    let known = false;
    for (const k of bootstrapKeys) if (bytesEqual(k, env.by)) known = true;
    if (!known) return false;
    const sigId = Buffer.from(env.sig.buffer, env.sig.byteOffset, env.sig.length).toString('base64');
    // Records of one set share the signature: the record memory is per (signature, key).
    const hit = this.seen.get(env.set ? `${sigId}|${key}` : sigId);
    if (
      hit &&
      hit.key === key &&
      hit.at === env.at &&
      bytesEqual(hit.by, env.by) &&
      bytesEqual(hit.p, env.p) &&
      (env.set ? hit.set !== undefined && bytesEqual(hit.set, env.set) : hit.set === undefined)
    )
      return true;
    if (env.set) {
      const root = rootOf(key, env);
      if (!root) return false;
      const r = this.roots.get(sigId);
      const rootKnown = r && r.at === env.at && bytesEqual(r.by, env.by) && bytesEqual(r.root, root);
      if (!rootKnown && !verifyEd25519(env.by, RING_SET_CONTEXT, setTbs(root, env.at), env.sig)) return false;
      if (!rootKnown) this.bounded(this.roots, sigId, { root, at: env.at, by: env.by });
    } else if (!verifyEd25519(env.by, RING_WRITE_CONTEXT, tbs(key, env.p, env.at), env.sig)) return false;
    this.remember(key, env);
    return true;
  }

  /**
   * An envelope this node signed itself a moment ago: its signature is good
   * by construction, so the STORE of it (and the replicas it is sent back to
   * this node as) need not verify it again.
   */
  signedHere(key: string, env: RingEnvelope): void {
    this.remember(key, env);
    if (env.set) {
      const root = rootOf(key, env);
      const sigId = Buffer.from(env.sig.buffer, env.sig.byteOffset, env.sig.length).toString('base64');
      if (root) this.bounded(this.roots, sigId, { root, at: env.at, by: env.by });
    }
  }

  private remember(key: string, env: RingEnvelope): void {
    const sigId = Buffer.from(env.sig.buffer, env.sig.byteOffset, env.sig.length).toString('base64');
    const entry = { key, p: env.p, at: env.at, by: env.by, ...(env.set ? { set: env.set } : {}) };
    this.bounded(this.seen, env.set ? `${sigId}|${key}` : sigId, entry);
  }

  private bounded<V>(m: Map<string, V>, id: string, v: V): void {
    if (m.size >= this.max) m.delete(m.keys().next().value as string);
    m.set(id, v);
  }
}

/**
 * Validator for the default namespace of a SecP2PSIP ring: the usual TTL and
 * clock checks, plus a bootstrap signature on the envelope. `bootstrapKeys`
 * is read on every call, so a node that learns more bootstraps later can add
 * them to the same collection.
 */
export function bootstrapWrittenValidator(bootstrapKeys: Iterable<Uint8Array>, base: RecordValidator): RecordValidator {
  const verified = new VerifiedEnvelopes();
  const recent = new RecentEnvelopes();
  const at = (r: DhtRecord): number => {
    const e = recent.open(r.value);
    return e.ok ? e.value.at : -1;
  };
  const v: RecordValidator = {
    validate(r, now) {
      const why = base.validate(r, now);
      if (why !== null) return why;
      const env = recent.open(r.value);
      if (!env.ok) return env.error;
      if (!verified.check(r.key, env.value, bootstrapKeys)) return 'not written by a known bootstrap';
      return null;
    },
    // The envelope is good for RING_TTL_MS after the bootstrap signed it, however its copy's created/ttl read.
    expiresBy: (r) => at(r) + RING_TTL_MS,
    select(a, b) {
      const ta = at(a);
      const tb = at(b);
      if (ta !== tb) return ta > tb ? a : b;
      // Same envelope: the copy kept longer wins (so a copy cut short cannot displace it); both are
      // already bounded by expiresBy, so a stretched copy gains nothing.
      const ea = expiresAt(a);
      const eb = expiresAt(b);
      if (ea !== eb) return ea > eb ? a : b;
      return newestWins(a, b);
    },
  };
  verifiedBy.set(v, verified);
  return v;
}

/** Each bootstrap-written validator's memory of verified envelopes. */
const verifiedBy = new WeakMap<RecordValidator, VerifiedEnvelopes>();

/** Whether a validator checks bootstrap signatures (made by `bootstrapWrittenValidator`). */
export function checksBootstrapSignature(v: RecordValidator): boolean {
  return verifiedBy.has(v);
}

/** The admission a known bootstrap signed, or undefined. */
export function admittedNode(
  admission: Uint8Array,
  bootstrapKeys: Iterable<Uint8Array>,
  now: number,
): Admission | undefined {
  const id = Buffer.from(admission.buffer, admission.byteOffset, admission.length).toString('base64');
  const hit = admissionsSeen.get(id);
  if (hit) {
    // Same bytes, same signature: only the signer must still be known and the times still hold.
    let known = false;
    for (const k of bootstrapKeys) if (bytesEqual(k, hit.issuer)) known = true;
    const a = hit.admission;
    if (known && a.issuedAt <= now + ADMISSION_SKEW_MS && now < a.expiresAt) return a;
    if (known) return undefined;
  }
  for (const k of bootstrapKeys) {
    const a = verifyAdmission(admission, k, now);
    if (a.ok) {
      if (admissionsSeen.size >= 4096) admissionsSeen.delete(admissionsSeen.keys().next().value as string);
      admissionsSeen.set(id, { issuer: new Uint8Array(k), admission: a.value });
      return a.value;
    }
  }
  return undefined;
}

/**
 * Admissions whose signature verified, by their exact bytes: every lookup
 * reply carries the same few dozen admissions, and a verification (a point
 * check and an Ed25519 signature) is the dominant cost of a fresh ref.
 */
const admissionsSeen = new Map<string, { issuer: Uint8Array; admission: Admission }>();

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
    return a !== undefined && a.nodeId === ref.id && bytesEqual(a.nodeKey, ref.key);
  };
}

export function pieceKey(name: string, i: number): string {
  return `${name}.${i}`;
}
