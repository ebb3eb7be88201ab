/**
 * Contact lookup and public key reconstruction, seed 000 IV.3: fetch
 * `Username` and the pieces `Username.i` from the ring, rebuild the user's
 * key bundle, and check the location record against it.
 *
 * Improvements over the seed: all keys are fetched in parallel (the seed went
 * one after another); the default rebuild is robust (every piece, Reed-Solomon
 * correction of up to floor((m-k)/2) bad ones, fail closed beyond and name the
 * holders). A rebuild that fails only because too few pieces answered is
 * told apart from one with refused or disagreeing pieces (piece-failure.ts):
 * the first passes while the ring repairs itself and ends in 480 with
 * Retry-After, the second in 403. The seed's own mode (k random pieces, no check) stays reachable as
 * `rebuild: 'seed'` for measurements.
 *
 * k pieces first. Every piece sits in the ring in an envelope a bootstrap
 * signed as part of the user's record set, which the reader's validator
 * checks, so a holder can hide a piece or hand back an older one, never
 * alter one. A robust read therefore starts with the location record and
 * the k pieces that sit on the fewest nodes (about 3 FETCHes on a ring of
 * 50 instead of 6 or 7 for all n + 1 keys, ring-fetch.ts coveringKeys) and
 * stands only when that rebuild is clean: one signing time throughout, the
 * k pieces interpolate to a secret carrying the digest each of them holds,
 * it decodes as the user's bundle, and the key verifies the user's own
 * signature on the location record. Anything short of that (a piece
 * missing, refused by the validator, of another time or another digest)
 * reads every piece and rebuilds robustly as before: corrected or failed
 * closed, logged, the holders of bad pieces named. docs/design.md ("k pieces
 * first") argues why no answer changes.
 *
 * Every call still fetches the records it rebuilds from through the ring and
 * every record still passes the node's validator (TTL, clock, bootstrap
 * signature); what a repeated call does not redo is the pure work on
 * identical bytes. The
 * robust rebuild, the bundle and key decoding and the check of the location
 * record's signature are functions of the fetched payloads alone, so their
 * outcome is kept per SHA-256 of exactly those bytes (RebuildMemo): the same
 * pieces and location record give the same key and the same verdict. Only
 * clean outcomes are kept (every piece answered and agreeing, signature
 * good): a call that meets a bad or missing piece always goes the full way
 * and logs it. What depends on the time (the adapter's admission) or on this
 * fetch (whether an owner was confirmed) is worked out on every call.
 */
import { createHash } from 'node:crypto';
import type { ChordNode } from '../dht/chord/chord-node.ts';
import type { GetResult } from '../dht/chord/chord-types.ts';
import type { OnRecord } from '../dht/chord/direct-fetch.ts';
import { UserKey } from '../identity/user-key.ts';
import type { NodeRef } from '../rpc/types.ts';
import { choosePieceIndices, combineRobust, combineSeed, decodePiece, type PubKeyPiece } from '../sharing/index.ts';
import { isOverlayError, OverlayError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import type { Random } from '../util/random.ts';
import {
  DOMAIN,
  decodeBundle,
  decodeLocation,
  type LocationRecord,
  locationTbs,
  type UserKeyBundle,
} from './messages.ts';
import { holdersOf, rebuildFailure } from './piece-failure.ts';
import { coveringKeys, fetchSigned } from './ring-fetch.ts';
import { admittedNode, openRingValue, pieceKey } from './ring-records.ts';
import { bytesEqual } from '../util/bytes.ts';

export type RebuildMode = 'robust' | 'seed';

export interface VerifiedUser {
  bundle: UserKeyBundle;
  key: UserKey;
  location: LocationRecord;
  /** The user's adapter, pinned to the node key the user signed. */
  adapter: NodeRef;
  /** `holders`: for each bad piece, the ring node that holds it (`<id prefix>@addr`), when there were bad ones. */
  pieces: { used: number; bad: number[]; missing: number[]; holders?: Record<number, string> };
  /** Some record came from an owner that was not confirmed (ring-fetch.ts): look up again, confirmed, if it fails. */
  unconfirmed: boolean;
}

export interface LookupContext {
  ring: ChordNode;
  k: number;
  n: number;
  rebuild: RebuildMode;
  random: Random;
  bootstrapKeys: Iterable<Uint8Array>;
  wallNow: () => number;
  log: Logger;
  /** Clean rebuilds by the bytes they came from (see the module comment); none: every call rebuilds. */
  memo?: RebuildMemo;
}

/** What a clean rebuild yields from one set of fetched payloads (everything but time- and fetch-dependent parts). */
interface Rebuilt {
  bundle: UserKeyBundle;
  key: UserKey;
  location: LocationRecord;
  used: number;
}

/**
 * Clean rebuilds, by SHA-256 of the name, n, k, each piece's index and
 * payload and the location payload (length-prefixed, so distinct inputs give
 * distinct hashed strings). A hit is exactly an earlier rebuild of the very
 * same bytes; bounded, oldest entry out first.
 */
export class RebuildMemo {
  private readonly done = new Map<string, Rebuilt>();
  hits = 0;
  constructor(private readonly max = 4096) {}

  static id(name: string, n: number, k: number, pieces: ReadonlyArray<[number, Uint8Array]>, loc: Uint8Array): string {
    const h = createHash('sha256');
    const len = Buffer.alloc(8);
    const part = (tag: number, b: Uint8Array) => {
      len.writeUInt32BE(tag, 0);
      len.writeUInt32BE(b.length, 4);
      h.update(len);
      h.update(b);
    };
    part(0, Buffer.from(`${name}\0${n}\0${k}`, 'utf8'));
    for (const [i, p] of pieces) part(i, p);
    part(0xffffffff, loc);
    return h.digest('base64');
  }

  get(id: string): Rebuilt | undefined {
    return this.done.get(id);
  }

  set(id: string, r: Rebuilt): void {
    if (this.done.size >= this.max) this.done.delete(this.done.keys().next().value as string);
    this.done.set(id, r);
  }
}

function notFound(r: GetResult | undefined): boolean {
  return r !== undefined && !r.ok && r.error === 'DHT_NOT_FOUND';
}

/**
 * Told the user's adapter as soon as the `Username` record arrives, before
 * the key is rebuilt: nothing is verified yet except the bootstrap's
 * admission of that adapter (caller.ts uses it to send a signed INVITE
 * early, and trusts nothing it gets back until the key is rebuilt).
 */
export type OnAdapter = (adapter: NodeRef) => void;

/**
 * Fetch and verify everything about `name`. Throws OverlayError: USER_UNKNOWN, CALLEE_UNREACHABLE,
 * SHARING_NOT_ENOUGH_PIECES (too few pieces answered, none refused: transient), VERIFICATION_FAILED.
 */
export async function lookupUser(
  ctx: LookupContext,
  name: string,
  confirm = false,
  onAdapter?: OnAdapter,
): Promise<VerifiedUser> {
  const indices =
    ctx.rebuild === 'seed'
      ? choosePieceIndices(ctx.n, ctx.k, ctx.random)
      : Array.from({ length: ctx.n }, (_, i) => i + 1);
  const keys = [name, ...indices.map((i) => pieceKey(name, i))];
  const early = onAdapter
    ? (key: string, r: { value: Uint8Array | string }) => {
        if (key !== name) return;
        const env = openRingValue(r.value);
        const l = env.ok ? decodeLocation(env.value.p) : undefined;
        const a = l?.ok && l.value.name === name ? adapterRef(l.value, ctx.bootstrapKeys, ctx.wallNow()) : undefined;
        if (a) onAdapter(a);
      }
    : undefined;
  // Robust reads start with the location record and k pieces on as few nodes as possible (see the module comment).
  if (ctx.rebuild === 'robust' && !confirm && ctx.k < indices.length) {
    const quick = await firstRead(ctx, name, indices, early);
    if (quick) return quick;
  }
  const fetched = await fetchSigned(ctx.ring, keys, confirm, early);
  const got = fetched.results;

  const loc = got.get(name);
  if (!loc?.ok) {
    if (notFound(loc)) throw new OverlayError('USER_UNKNOWN', name);
    throw new OverlayError('CALLEE_UNREACHABLE', `lookup of ${name} failed: ${loc?.reason ?? 'no answer'}`);
  }

  // Pieces no replica returned: absent, or refused by the ring's validator (envelope not signed by a bootstrap).
  const unanswered: number[] = [];
  const undecodable: number[] = [];
  const payloads: Array<[number, Uint8Array]> = [];
  for (const i of indices) {
    const r = got.get(pieceKey(name, i));
    if (!r?.ok) {
      unanswered.push(i);
      continue;
    }
    const env = fetched.envelope(r.value);
    if (env.ok) payloads.push([i, env.value.p]);
    else undecodable.push(i);
  }

  const locEnv = fetched.envelope(loc.value);
  const memoId =
    ctx.memo && ctx.rebuild === 'robust' && locEnv.ok && payloads.length === indices.length
      ? RebuildMemo.id(name, ctx.n, ctx.k, payloads, locEnv.value.p)
      : undefined;
  const hit = memoId ? ctx.memo?.get(memoId) : undefined;
  if (hit) {
    if (ctx.memo) ctx.memo.hits++;
    const adapter = adapterRef(hit.location, ctx.bootstrapKeys, ctx.wallNow());
    if (!adapter) throw new OverlayError('VERIFICATION_FAILED', `adapter of ${name} is not admitted`);
    return cleanUser(hit, adapter, fetched.unconfirmed.size > 0);
  }

  const pieces: PubKeyPiece[] = [];
  for (const [i, bytes] of payloads) {
    const p = decodePiece(bytes);
    if (p.ok && p.value.index === i) pieces.push(p.value);
    else undecodable.push(i);
  }
  undecodable.sort((a, b) => a - b);

  let secret: Uint8Array;
  let bad: number[] = [...undecodable];
  let missing: number[] = [];
  try {
    if (ctx.rebuild === 'seed') secret = await combineSeed(pieces, ctx.k, ctx.random);
    else {
      const res = combineRobust(pieces, ctx.n, ctx.k);
      secret = res.secret;
      bad = [...new Set([...bad, ...res.bad])].sort((a, b) => a - b);
      missing = res.missing.filter((i) => !undecodable.includes(i));
      if (bad.length > 0 || unanswered.length > 0)
        ctx.log.warn({ user: name, badPieces: bad, unanswered }, 'rebuilt key despite bad or missing pieces');
    }
  } catch (e) {
    if (!isOverlayError(e)) throw e;
    // Too few pieces answered is transient (480 with Retry-After); refused or disagreeing ones fail closed (403).
    throw await rebuildFailure(ctx, name, { error: e, unanswered, undecodable });
  }

  const b = decodeBundle(secret);
  if (!b.ok || b.value.name !== name) throw new OverlayError('VERIFICATION_FAILED', `rebuilt key is not ${name}'s`);
  // A robust rebuild gives exactly the key the bootstrap checked at registration (its digest): no second point check.
  const key = UserKey.decode(b.value.signKey, ctx.rebuild !== 'robust');
  if (!key.ok) throw new OverlayError('VERIFICATION_FAILED', `rebuilt key unusable: ${key.error}`);

  const l = locEnv.ok ? decodeLocation(locEnv.value.p) : undefined;
  if (!l?.ok || l.value.name !== name) throw new OverlayError('VERIFICATION_FAILED', `bad location record for ${name}`);
  const location = l.value;
  if (!key.value.verify(DOMAIN.location, locationTbs(location), location.sig))
    throw new OverlayError('VERIFICATION_FAILED', `location record of ${name} is not signed by ${name}`);
  const adapter = adapterRef(location, ctx.bootstrapKeys, ctx.wallNow());
  if (!adapter) throw new OverlayError('VERIFICATION_FAILED', `adapter of ${name} is not admitted`);
  // Who sent the corrected pieces (operators count them per holder to find a lying node): one lookup per bad
  // piece, paid only by a call that met one.
  const holders = bad.length > 0 ? await holdersOf(ctx.ring, name, bad) : undefined;
  if (memoId && bad.length === 0 && missing.length === 0 && pieces.length === indices.length)
    ctx.memo?.set(memoId, { bundle: b.value, key: key.value, location, used: pieces.length });
  return {
    bundle: b.value,
    key: key.value,
    location,
    adapter,
    pieces: { used: pieces.length, bad, missing, ...(holders ? { holders } : {}) },
    unconfirmed: fetched.unconfirmed.size > 0,
  };
}

/**
 * The first read of a robust lookup: the location record and the k pieces
 * that sit on the fewest nodes (ring-fetch.ts coveringKeys). It stands only
 * when it is clean: every one of those k+1 records came back through the
 * validator with one signing time, the k pieces carry one digest and
 * interpolate to a secret with that digest (combineRobust with m = k: no
 * error may be corrected, any disagreement fails), the secret decodes as the
 * user's bundle and the key verifies the user's own signature on the
 * location record. Anything else returns undefined, and the caller reads
 * every piece and rebuilds robustly, correcting or failing closed as before.
 */
async function firstRead(
  ctx: LookupContext,
  name: string,
  indices: readonly number[],
  early: OnRecord | undefined,
): Promise<VerifiedUser | undefined> {
  const indexOf = new Map(indices.map((i) => [pieceKey(name, i), i]));
  const keys = coveringKeys(ctx.ring, name, [...indexOf.keys()], ctx.k);
  const fetched = await fetchSigned(ctx.ring, keys, false, early);
  const loc = fetched.results.get(name);
  if (notFound(loc)) throw new OverlayError('USER_UNKNOWN', name);
  const locEnv = loc?.ok ? fetched.envelope(loc.value) : undefined;
  if (!locEnv?.ok) return undefined;
  const payloads: Array<[number, Uint8Array]> = [];
  for (const key of keys.slice(1)) {
    const r = fetched.results.get(key);
    const env = r?.ok ? fetched.envelope(r.value) : undefined;
    if (!env?.ok || env.value.at !== locEnv.value.at) return undefined;
    payloads.push([indexOf.get(key) as number, env.value.p]);
  }
  const memoId = ctx.memo ? RebuildMemo.id(name, ctx.n, ctx.k, payloads, locEnv.value.p) : undefined;
  let done = memoId ? ctx.memo?.get(memoId) : undefined;
  if (done && ctx.memo) ctx.memo.hits++;
  done ??= rebuildExact(ctx, name, payloads, locEnv.value.p);
  if (!done) return undefined;
  const adapter = adapterRef(done.location, ctx.bootstrapKeys, ctx.wallNow());
  if (!adapter) return undefined;
  if (memoId) ctx.memo?.set(memoId, done);
  return cleanUser(done, adapter, fetched.unconfirmed.size > 0);
}

/** The verified user of a rebuild in which every piece used was good (none bad, none missing). */
function cleanUser(r: Rebuilt, adapter: NodeRef, unconfirmed: boolean): VerifiedUser {
  return {
    bundle: r.bundle,
    key: r.key,
    location: r.location,
    adapter,
    pieces: { used: r.used, bad: [], missing: [] },
    unconfirmed,
  };
}

/** Exactly k pieces to the user's bundle and key, checked against the location record; undefined on any doubt. */
function rebuildExact(
  ctx: LookupContext,
  name: string,
  payloads: ReadonlyArray<[number, Uint8Array]>,
  locPayload: Uint8Array,
): Rebuilt | undefined {
  const pieces: PubKeyPiece[] = [];
  for (const [i, bytes] of payloads) {
    const p = decodePiece(bytes);
    if (!p.ok || p.value.index !== i) return undefined;
    pieces.push(p.value);
  }
  let secret: Uint8Array;
  try {
    const res = combineRobust(pieces, ctx.n, ctx.k);
    if (res.bad.length > 0 || res.agreeing.length !== ctx.k) return undefined;
    secret = res.secret;
  } catch (e) {
    if (isOverlayError(e)) return undefined;
    throw e;
  }
  const b = decodeBundle(secret);
  if (!b.ok || b.value.name !== name) return undefined;
  const key = UserKey.decode(b.value.signKey, false);
  if (!key.ok) return undefined;
  const l = decodeLocation(locPayload);
  if (!l.ok || l.value.name !== name) return undefined;
  if (!key.value.verify(DOMAIN.location, locationTbs(l.value), l.value.sig)) return undefined;
  return { bundle: b.value, key: key.value, location: l.value, used: pieces.length };
}

/** The adapter's NodeRef from a location record, if a known bootstrap admitted its node key. */
export function adapterRef(loc: LocationRecord, bootstrapKeys: Iterable<Uint8Array>, now: number): NodeRef | undefined {
  if (!loc.admission) return undefined;
  const a = admittedNode(loc.admission, bootstrapKeys, now);
  if (!a || !bytesEqual(a.nodeKey, loc.nodeKey)) return undefined;
  return { id: a.nodeId, addr: loc.nodeAddr, key: loc.nodeKey, admission: loc.admission };
}
