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
 *    confirmation (call-flow.ts), and a key that differs from the one
 *    trusted before goes to the bootstrap (TOFU with WHOIS).
 *
 * A forged value is never accepted: without a bootstrap signature for this
 * exact key it is refused like any invalid record. The invariant "never
 * accept a wrong answer" thus rests on the signature, not on who answered.
 *
 * Because of that, the reader does not even need a lookup to pick whom to
 * ask: the ring view (ChordNode.view, the nodes it heard of lately) names
 * the likely holders of every key, the owner and its successors. Keys are
 * grouped so that one FETCH per node covers as many as it can hold (on a
 * ring of 50 the n+1 keys of a user take about six FETCHes, where routing
 * took about 30 messages); the node itself is read locally. Keys the guessed
 * holders do not return go through unconfirmed lookups, then the confirmed
 * get, as above.
 */
import type { ChordNode, GetResult } from '../dht/chord/chord-node.ts';
import { decodeFetchReply, MAX_KEYS_PER_FETCH, METHOD } from '../dht/chord/messages.ts';
import type { DhtRecord } from '../dht/store/record.ts';
import { keyPosition } from '../dht/store/ring-id.ts';
import type { NodeRef } from '../rpc/types.ts';
import { checksBootstrapSignature, openRingValue } from './ring-records.ts';

export interface SignedFetch {
  results: Map<string, GetResult>;
  /** Keys whose record came from an owner that was not confirmed. */
  unconfirmed: Set<string>;
  /** FETCH and lookup messages this fetch sent (before any confirmed get). */
  messages: number;
}

/** Told about each record as soon as it is accepted, before the rest arrive. */
export type OnRecord = (key: string, r: Extract<GetResult, { ok: true }>) => void;

interface Ask {
  to: NodeRef;
  keys: string[];
  hops: number;
}

/**
 * Get every key at once. `confirm` true: the Chord get with owner
 * confirmation for each. False: the guessed holders first (one FETCH per
 * node), then unconfirmed lookups sharing their replies (ChordNode.lookupMany)
 * and one FETCH per owner; every record is checked by the node's validator
 * (TTL, clock and the bootstrap signature on the envelope). Anything
 * missing, invalid or inconsistent in time goes through the confirmed get.
 */
export async function fetchSigned(
  ring: ChordNode,
  keys: readonly string[],
  confirm: boolean,
  onRecord?: OnRecord,
): Promise<SignedFetch> {
  const unconfirmed = new Set<string>();
  if (confirm) return { results: await ring.getMany(keys), unconfirmed, messages: 0 };
  const results = new Map<string, GetResult>();
  const accept = (k: string, r: Extract<GetResult, { ok: true }>) => {
    results.set(k, r);
    unconfirmed.add(k);
    onRecord?.(k, r);
  };
  // Only where the node's validator checks the bootstrap signature (daemon.ts ringInit).
  const signed = keys.filter((k) => checksBootstrapSignature(ring.store.validatorFor(k)));
  const slow = new Set<string>();
  const patience = Math.max(DIRECT_PATIENCE_MS, 4 * ring.rttMs);
  let messages = await fetchFrom(ring, planFromView(ring, signed), accept, patience, slow);
  const left = signed.filter((k) => !results.has(k));
  if (left.length > 0) {
    const owners = await ring.lookupMany(
      left.map((k) => keyPosition(k)),
      false,
      slow,
    );
    const asks = new Map<string, Ask>();
    left.forEach((k, i) => {
      const lr = owners[i];
      messages += lr.queries;
      if (lr.ok) addAsk(asks, lr.owner, k, lr.hops + 1);
    });
    messages += await fetchFrom(ring, [...asks.values()], accept);
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
  return { results, unconfirmed, messages };
}

/** The bootstrap's signing time of a fetched record's envelope; -1 for anything else. */
function signedAt(r: GetResult): number {
  const env = r.ok ? openRingValue(r.value) : undefined;
  return env?.ok ? env.value.at : -1;
}

function addAsk(asks: Map<string, Ask>, to: NodeRef, key: string, hops: number): void {
  const a = asks.get(to.id);
  if (a && a.keys.length < MAX_KEYS_PER_FETCH) a.keys.push(key);
  else if (!a) asks.set(to.id, { to, keys: [key], hops });
}

/**
 * Whom to ask for which keys, from the ring view: each key's guessed
 * holders are the first r known nodes at or after its position. Greedy
 * cover: the node itself first (no message), then the node that can serve
 * the most keys still open, the guessed owner breaking ties.
 */
export function planFromView(ring: ChordNode, keys: readonly string[]): Ask[] {
  const cands = keys.map((k) => ring.guessHolders(keyPosition(k), ring.r));
  const open = new Set(keys.map((_, i) => i));
  const out: Ask[] = [];
  const mine = keys.map((_, i) => i).filter((i) => cands[i].some((c) => c.id === ring.id));
  if (mine.length > 0) {
    out.push({ to: ring.self, keys: mine.map((i) => keys[i]), hops: 0 });
    for (const i of mine) open.delete(i);
  }
  while (open.size > 0) {
    const score = new Map<string, { ref: NodeRef; n: number; owner: number }>();
    for (const i of open)
      cands[i].forEach((c, j) => {
        const e = score.get(c.id) ?? { ref: c, n: 0, owner: 0 };
        e.n++;
        if (j === 0) e.owner++;
        score.set(c.id, e);
      });
    let best: { ref: NodeRef; n: number; owner: number } | undefined;
    for (const e of score.values()) if (!best || e.n > best.n || (e.n === best.n && e.owner > best.owner)) best = e;
    if (!best) break;
    const ref = best.ref;
    const served = [...open].filter((i) => cands[i].some((c) => c.id === ref.id));
    out.push({ to: ref, keys: served.map((i) => keys[i]).slice(0, MAX_KEYS_PER_FETCH), hops: 1 });
    for (const i of served) open.delete(i);
  }
  return out;
}

/**
 * How long a guessed holder may take before its keys go the routed way
 * (ms): a holder that crashed without a word would otherwise hold the call
 * for a whole RPC timeout. Its late answer is ignored. At least this, and
 * four smoothed round trips of the node's RPCs on a slow network.
 */
export const DIRECT_PATIENCE_MS = 400;

/**
 * One FETCH per ask, all at once (the node's own share read locally);
 * returns the messages sent. `patienceMs`: stop waiting for the slow ones,
 * whose ids go to `slow`.
 */
async function fetchFrom(
  ring: ChordNode,
  asks: readonly Ask[],
  onRecord: OnRecord,
  patienceMs?: number,
  slow?: Set<string>,
): Promise<number> {
  const pending = new Set<string>();
  let sent = 0;
  let open = true;
  const accept: OnRecord = (k, r) => {
    if (open) onRecord(k, r);
  };
  let timer: { cancel(): void } | undefined;
  const patience =
    patienceMs === undefined
      ? undefined
      : new Promise<void>((done) => {
          timer = ring.clock.setTimer(patienceMs, done);
        });
  const all = Promise.all(
    asks.map(async (a) => {
      if (a.to.id === ring.id) {
        for (const k of a.keys) {
          const rec = ring.store.get(k);
          if (rec) checked(ring, k, rec, 0, accept);
        }
        return;
      }
      sent++;
      pending.add(a.to.id);
      const raw = await ring.call(a.to, METHOD.FETCH, { keys: a.keys });
      pending.delete(a.to.id);
      const rep = raw === null ? null : decodeFetchReply(raw);
      if (!rep || rep.records.length !== a.keys.length) return;
      a.keys.forEach((k, i) => {
        const rec = rep.records[i];
        if (rec) checked(ring, k, rec, a.hops, accept);
      });
    }),
  );
  await (patience ? Promise.race([all, patience]) : all);
  open = false;
  for (const id of pending) {
    // Silent past the patience: not a holder to guess again until the ring names it anew.
    ring.view.mute(id);
    slow?.add(id);
  }
  timer?.cancel();
  return sent;
}

/** Accept a record for `key` if the node's own validator takes it and it holds a ring envelope. */
function checked(ring: ChordNode, key: string, rec: DhtRecord, hops: number, accept: OnRecord): void {
  if (rec.key !== key || !(rec.value instanceof Uint8Array)) return;
  if (ring.store.check(rec) !== null) return;
  if (!openRingValue(rec.value).ok) return;
  accept(key, { ok: true, record: rec, value: rec.value, hops });
}
