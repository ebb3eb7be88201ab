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
 *    copy). All records of one user are written together with one time, so
 *    records of different times in one fetch send every key that was read
 *    unconfirmed through the confirmed get. A coherent stale set needs a liar
 *    on the path of every one of the n+1 keys; even then the answer is a key
 *    or location the bootstrap did issue for that user, which callers treat
 *    as unconfirmed: a call that fails with it is looked up again with
 *    confirmation (call-flow.ts), and a key that differs from the one
 *    trusted before goes to the bootstrap (TOFU with WHOIS).
 *
 * A forged value is never accepted: without a bootstrap signature for this
 * exact key it is refused like any invalid record. The invariant "never
 * accept a wrong answer" thus rests on the signature, not on who answered.
 */
import type { ChordNode, GetResult, LookupOutcome } from '../dht/chord/chord-node.ts';
import { decodeFetchReply, METHOD } from '../dht/chord/messages.ts';
import { keyPosition } from '../dht/store/ring-id.ts';
import { checksBootstrapSignature, openRingValue } from './ring-records.ts';

export interface SignedFetch {
  results: Map<string, GetResult>;
  /** Keys whose record came from an owner that was not confirmed. */
  unconfirmed: Set<string>;
}

/**
 * Get every key at once. `confirm` true: the Chord get with owner
 * confirmation for each. False: unconfirmed lookups sharing their replies
 * (ChordNode.lookupMany) and one FETCH per key,
 * the record checked by the node's validator (TTL, clock and the bootstrap
 * signature on the envelope); anything missing, invalid or inconsistent in
 * time goes through the confirmed get.
 */
export async function fetchSigned(ring: ChordNode, keys: readonly string[], confirm: boolean): Promise<SignedFetch> {
  const unconfirmed = new Set<string>();
  if (confirm) return { results: await ring.getMany(keys), unconfirmed };
  // Only where the node's validator checks the bootstrap signature (daemon.ts ringInit).
  const signed = keys.filter((k) => checksBootstrapSignature(ring.store.validatorFor(k)));
  const owners = await ring.lookupMany(
    signed.map((k) => keyPosition(k)),
    false,
  );
  const byKey = new Map(signed.map((k, i) => [k, owners[i]]));
  const quick = await Promise.all(keys.map((k) => quickGet(ring, k, byKey.get(k))));
  const results = new Map<string, GetResult>();
  const times = new Set<number>();
  keys.forEach((k, i) => {
    const r = quick[i];
    if (!r) return;
    results.set(k, r);
    unconfirmed.add(k);
    const env = r.ok ? openRingValue(r.value) : undefined;
    times.add(env?.ok ? env.value.at : -1);
  });
  // One user's records share one signing time: a mix means someone answered with an old copy.
  const again = times.size > 1 ? [...keys] : keys.filter((k) => !results.has(k));
  if (times.size > 1) unconfirmed.clear();
  if (again.length > 0) {
    const slow = await ring.getMany(again);
    for (const [k, r] of slow) results.set(k, r);
  }
  return { results, unconfirmed };
}

/** Unconfirmed owner, one FETCH, the node's own validator; undefined when any step gives nothing usable. */
async function quickGet(ring: ChordNode, key: string, lr: LookupOutcome | undefined): Promise<GetResult | undefined> {
  if (!lr?.ok) return undefined;
  const raw = await ring.call(lr.owner, METHOD.FETCH, { keys: [key] });
  const rec = raw === null ? undefined : decodeFetchReply(raw)?.records[0];
  if (!rec || rec.key !== key || !(rec.value instanceof Uint8Array)) return undefined;
  if (ring.store.check(rec) !== null) return undefined;
  if (!openRingValue(rec.value).ok) return undefined;
  return { ok: true, record: rec, value: rec.value, hops: lr.hops };
}
