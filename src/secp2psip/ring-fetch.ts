/**
 * Reading bootstrap-written records without the second owner confirmation.
 *
 * A Chord get confirms the owner through two sources (dht/chord/lookup.ts)
 * before fetching, which costs one to three NEIGHBORS round trips per key.
 * SecP2PSIP records do not need that to stay correct: every value in the
 * ring is an envelope signed by a known bootstrap over (key, payload, time)
 * (ring-records.ts), and the reader checks that signature here. So the node
 * that an unconfirmed lookup names as owner can do exactly three things:
 *
 *  - hand back the genuine record: accepted, as from the true owner;
 *  - hide it (answer nothing, or something that does not verify): that key
 *    falls back to the confirmed get, which also tries the replicas;
 *  - hand back an older genuine version (it held the key before, or kept a
 *    copy). All records of one user are written together with one time, and
 *    a bootstrap's times only grow, so in a fetch that mixes times the keys
 *    older than the newest go through the confirmed get (every key does if
 *    that still leaves a mix). A coherent stale set needs a liar
 *    on the path of every one of the n+1 keys; even then the answer is a key
 *    or location the bootstrap did issue for that user, which callers treat
 *    as unconfirmed: a call that fails with it is looked up again with
 *    confirmation (caller.ts, callee.ts), and a key that differs from the one
 *    trusted before goes to the bootstrap (TOFU with WHOIS).
 *
 * A forged value is never accepted: without a bootstrap signature for this
 * exact key it is refused like any invalid record. The invariant "never
 * accept a wrong answer" thus rests on the signature, not on who answered.
 *
 * Because of that, the reader does not even need a lookup to pick whom to
 * ask: the direct read of Chord (ChordNode.getManyDirect, dht/chord/direct-fetch.ts)
 * asks the likely holders named by the node's ring view, then unconfirmed
 * lookups, and accepts only what the node's validator accepts. What this
 * module adds is the SecP2PSIP rule: which keys may be read that way (those
 * whose validator checks the bootstrap signature), and one signing time per
 * user. Keys the direct read does not return go through the confirmed get.
 */
import type { ChordNode } from '../dht/chord/chord-node.ts';
import type { GetResult } from '../dht/chord/chord-types.ts';
import type { OnRecord } from '../dht/chord/direct-fetch.ts';
import { readPosition } from '../dht/store/ring-id.ts';
import type { Result } from '../util/errors.ts';
import { checksBootstrapSignature, openRingValue, type RingEnvelope } from './ring-records.ts';

export interface SignedFetch {
  results: Map<string, GetResult>;
  /** Keys whose record came from an owner that was not confirmed. */
  unconfirmed: Set<string>;
  /** FETCH and lookup messages the direct read sent (before any confirmed get). */
  messages: number;
  /** openRingValue of a fetched value, decoded once per fetch (the fetch reads each time, the rebuild each payload). */
  envelope(value: Uint8Array | string): Result<RingEnvelope>;
}

/**
 * Get every key at once. `confirm` true: the Chord get with owner
 * confirmation for each. False: Chord's direct read of the bootstrap-signed
 * keys, every record checked by the node's validator (TTL, clock and the
 * bootstrap signature on the envelope); anything missing, invalid or
 * inconsistent in time goes through the confirmed get.
 */
export async function fetchSigned(
  ring: ChordNode,
  keys: readonly string[],
  confirm: boolean,
  onRecord?: OnRecord,
): Promise<SignedFetch> {
  const unconfirmed = new Set<string>();
  const decoded = new Map<Uint8Array | string, Result<RingEnvelope>>();
  const envelope = (value: Uint8Array | string) => {
    let env = decoded.get(value);
    if (!env) {
      env = openRingValue(value);
      decoded.set(value, env);
    }
    return env;
  };
  // The bootstrap's signing time of a fetched record's envelope; -1 for anything else.
  const signedAt = (r: GetResult) => {
    const env = r.ok ? envelope(r.value) : undefined;
    return env?.ok ? env.value.at : -1;
  };
  if (confirm) return { results: await ring.getMany(keys), unconfirmed, messages: 0, envelope };
  const results = new Map<string, GetResult>();
  // Only where the node's validator checks the bootstrap signature (daemon.ts ringInit).
  const signed = keys.filter((k) => checksBootstrapSignature(ring.store.validatorFor(k)));
  const direct = await ring.getManyDirect(signed, { onRecord });
  for (const [k, r] of direct.found) {
    results.set(k, r);
    unconfirmed.add(k);
  }
  // One user's records share one signing time: a mix means someone answered with an old copy (a node that
  // held the key once keeps its copy). Bootstrap times only grow, so the newest copies stand; the older
  // ones are read again with confirmation, and if that still leaves a mix, every key is.
  const newest = Math.max(-1, ...[...results.values()].map(signedAt));
  const again = keys.filter((k) => {
    const r = results.get(k);
    return !r || signedAt(r) < newest;
  });
  for (const k of again) unconfirmed.delete(k);
  if (again.length > 0) {
    for (const [k, r] of await ring.getMany(again)) results.set(k, r);
    const times = new Set([...results.values()].filter((r) => r.ok).map(signedAt));
    if (times.size > 1) {
      unconfirmed.clear();
      const rest = keys.filter((k) => !again.includes(k));
      for (const [k, r] of await ring.getMany(rest)) results.set(k, r);
    }
  }
  return { results, unconfirmed, messages: direct.messages, envelope };
}

/**
 * The keys a first read of one user asks for: `first` (the location record) and `need` of `optional` (the
 * pieces), chosen so that they sit on as few nodes as possible by the ring view's guess of each key's
 * holders (key-lookup.ts explains why k pieces are enough when they rebuild cleanly). Keys this node holds
 * itself come first (no message), then, greedily, the guessed holder of `first` that serves the most
 * pieces, then the node serving the most pieces still wanted; ties go to the lower piece numbers, so the
 * choice is the same for the same view. Returns `first` followed by the chosen keys in their given order.
 */
export function coveringKeys(
  ring: Pick<ChordNode, 'id' | 'r' | 'guessHolders'>,
  first: string,
  optional: readonly string[],
  need: number,
): string[] {
  if (need >= optional.length) return [first, ...optional];
  const holders = (k: string) => ring.guessHolders(readPosition(k), ring.r).map((h) => h.id);
  const cands = optional.map(holders);
  const chosen = new Set<number>();
  const takeFrom = (node: string) => {
    cands.forEach((c, i) => {
      if (chosen.size < need && c.includes(node)) chosen.add(i);
    });
  };
  takeFrom(ring.id);
  const firstHolders = holders(first);
  if (!firstHolders.includes(ring.id)) {
    // The location record needs a message anyway: to the holder of it that serves the most pieces besides.
    let best = firstHolders[0];
    let most = -1;
    for (const h of firstHolders) {
      const served = cands.filter((c, i) => !chosen.has(i) && c.includes(h)).length;
      if (served > most) {
        best = h;
        most = served;
      }
    }
    if (best !== undefined) takeFrom(best);
  }
  while (chosen.size < need) {
    const score = new Map<string, number>();
    cands.forEach((c, i) => {
      if (!chosen.has(i)) for (const h of c) score.set(h, (score.get(h) ?? 0) + 1);
    });
    let best: string | undefined;
    for (const [h, n] of score) if (best === undefined || n > (score.get(best) ?? 0)) best = h;
    if (best === undefined) {
      // No guess at all (an empty view): the lowest pieces not taken yet.
      for (let i = 0; i < optional.length && chosen.size < need; i++) chosen.add(i);
      break;
    }
    takeFrom(best);
  }
  return [first, ...optional.filter((_, i) => chosen.has(i))];
}
