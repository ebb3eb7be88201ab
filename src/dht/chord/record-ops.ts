/**
 * Storing and reading records on the ring: a record goes to the owner of
 * its key and the owner's r-1 successors; a read asks the owner first and
 * falls back to the replicas, keeping only records this node's validator
 * accepts (several puts at once are batch-put.ts, reads straight from
 * guessed holders direct-fetch.ts).
 */
import type { NodeRef } from '../../rpc/types.ts';
import type { ErrorCode } from '../../util/errors.ts';
import type { DhtRecord } from '../store/record.ts';
import { keyPosition } from '../store/ring-id.ts';
import type { ChordNode } from './chord-node.ts';
import type { GetResult, LookupOutcome, PutResult } from './chord-types.ts';
import { decodeFetchReply, decodeStoreReply, METHOD } from './messages.ts';

/** Look the owner up, then store on it and its successors. */
export async function storeRecord(node: ChordNode, rec: DhtRecord): Promise<PutResult> {
  const lr = await node.lookup(rec.key);
  if (!lr.ok) return { ok: false, error: 'DHT_LOOKUP_FAILED', reason: lr.reason };
  const replies = await Promise.all(lr.replicas.map((t) => node.call(t, METHOD.STORE, { records: [rec] })));
  let stored = 0;
  let ownerError: string | null = null;
  replies.forEach((raw, i) => {
    const rep = raw === null ? null : decodeStoreReply(raw);
    const res = rep?.ok ? rep.value.results[0] : undefined;
    if (rep?.ok && res === null) stored++;
    else if (i === 0 && typeof res === 'string') ownerError = res;
  });
  if (ownerError !== null) return { ok: false, error: ownerError as ErrorCode, reason: 'refused by the owner' };
  if (stored === 0) return { ok: false, error: 'DHT_LOOKUP_FAILED', reason: 'no replica stored the record' };
  return { ok: true, replicas: stored, hops: lr.hops };
}

/** The key from its owner, else the best of what the replicas return (the validator picks). */
export async function getFrom(node: ChordNode, key: string, lr: LookupOutcome): Promise<GetResult> {
  if (!lr.ok) return { ok: false, error: 'DHT_LOOKUP_FAILED', reason: lr.reason, hops: lr.hops };
  const first = await fetchFrom(node, lr.replicas[0], key);
  if (first) return { ok: true, record: first, value: first.value, hops: lr.hops };
  const rest = await Promise.all(lr.replicas.slice(1).map((h) => fetchFrom(node, h, key)));
  let best: DhtRecord | null = null;
  for (const r of rest) if (r) best = best ? node.store.validatorFor(key).select(best, r) : r;
  if (best) return { ok: true, record: best, value: best.value, hops: lr.hops };
  return { ok: false, error: 'DHT_NOT_FOUND', reason: key, hops: lr.hops };
}

/** Every key looked up in one shared batch and fetched at once. */
export async function getMany(node: ChordNode, keys: readonly string[]): Promise<Map<string, GetResult>> {
  const lrs = await node.lookupMany(keys.map((k) => keyPosition(k)));
  const res = await Promise.all(keys.map((k, i) => getFrom(node, k, lrs[i])));
  return new Map(keys.map((k, i) => [k, res[i]]));
}

/**
 * Every replica's copy of each key (those this node's validator accepts), the lookups sharing one batch: for
 * a reader that must not take one holder's word, since a holder can hide a record or hand back an older one,
 * while all r replicas would have to collude to do so. A key whose lookup failed is left out of the map
 * (so a reader can tell "no record" from "not read").
 */
export async function getReplicas(node: ChordNode, keys: readonly string[]): Promise<Map<string, DhtRecord[]>> {
  const lrs = await node.lookupMany(keys.map((k) => keyPosition(k)));
  const out = new Map<string, DhtRecord[]>();
  await Promise.all(
    keys.map(async (k, i) => {
      const lr = lrs[i];
      if (!lr.ok) return;
      const recs = await Promise.all(lr.replicas.map((h) => fetchFrom(node, h, k)));
      out.set(
        k,
        recs.filter((r): r is DhtRecord => r !== null),
      );
    }),
  );
  return out;
}

async function fetchFrom(node: ChordNode, holder: NodeRef, key: string): Promise<DhtRecord | null> {
  const raw = await node.call(holder, METHOD.FETCH, { keys: [key] });
  const rep = raw === null ? null : decodeFetchReply(raw);
  const rec = rep?.ok ? rep.value.records[0] : undefined;
  if (!rec || rec.key !== key || node.store.check(rec) !== null) return null;
  return rec;
}
