/**
 * Several puts as one batch (ChordNode.putMany): what n independent puts
 * would do, with fewer messages. The keys' lookups share one LookupBatch (a
 * successor list that covers several keys answers for all of them, so keys
 * with the same owner cost one walk), and each holder gets one STORE carrying
 * every record it is owner or replica of, instead of one STORE per record.
 *
 * Each key's result is what `put` would report for it alone: refused when
 * its owner refuses it, DHT_LOOKUP_FAILED when no owner could be confirmed or
 * no replica stored it, else the number of replicas that did. Every record
 * is published (republished by the maintenance until `unpublish`) exactly as
 * by `put`, and one whose owner could not be confirmed is tried again by the
 * maintenance two stabilize periods later.
 */
import type { NodeRef } from '../../rpc/types.ts';
import type { ErrorCode } from '../../util/errors.ts';
import type { DhtRecord } from '../store/record.ts';
import { keyPosition } from '../store/ring-id.ts';
import type { ChordNode } from './chord-node.ts';
import type { PutResult } from './chord-types.ts';
import { decodeStoreReply, METHOD } from './messages.ts';

/** Records per STORE at most (a holder of many keys of one batch gets several, each well inside a frame). */
const STORE_BATCH = 64;

export interface PutEntry {
  key: string;
  value: Uint8Array | string;
}

/** What the batch needs of a node (its internals are the same `put` uses). */
export type BatchNode = Pick<ChordNode, 'clock' | 'id' | 'init' | 'store' | 'maintenance' | 'lookupMany' | 'call'>;

/**
 * The next record this node publishes under `key` (its sequence number one past the last one it published), checked
 * by the local store's validator and taken into the republish set; or why it is refused. The one step `put` and
 * `putMany` share before they store.
 */
export function publish(
  node: Pick<BatchNode, 'clock' | 'id' | 'init' | 'store' | 'maintenance'>,
  key: string,
  value: Uint8Array | string,
  ttlMs: number,
):
  | { ok: true; entry: { record: DhtRecord; nextAt: number } }
  | { ok: false; error: 'DHT_RECORD_INVALID'; reason: string } {
  const prev = node.maintenance.published.get(key);
  const record: DhtRecord = {
    key,
    value,
    created: node.clock.wallNow(),
    ttlMs,
    seq: prev ? prev.record.seq + 1 : 0,
    publisher: node.id,
  };
  const why = typeof key === 'string' && key.length > 0 ? node.store.check(record) : 'empty key';
  if (why !== null) return { ok: false, error: 'DHT_RECORD_INVALID', reason: why };
  const entry = { record, nextAt: node.clock.now() + node.init.republishMs };
  node.maintenance.published.set(key, entry);
  return { ok: true, entry };
}

export async function putMany(node: BatchNode, entries: readonly PutEntry[], ttlMs: number): Promise<PutResult[]> {
  const out: PutResult[] = new Array(entries.length);
  const recs: Array<{ i: number; rec: DhtRecord; entry: { record: DhtRecord; nextAt: number } }> = [];
  for (const [i, { key, value }] of entries.entries()) {
    const p = publish(node, key, value, ttlMs);
    if (!p.ok) out[i] = p;
    else recs.push({ i, rec: p.entry.record, entry: p.entry });
  }
  const lrs = await node.lookupMany(recs.map((r) => keyPosition(r.rec.key)));
  // Holder id -> its ref and the records it gets (with each record's place in `recs` and whether it owns it).
  const perHolder = new Map<string, { to: NodeRef; items: Array<{ r: number; owner: boolean }> }>();
  recs.forEach((r, j) => {
    const lr = lrs[j];
    if (!lr.ok) {
      out[r.i] = { ok: false, error: 'DHT_LOOKUP_FAILED', reason: lr.reason };
      // As `put`: the maintenance tries again soon, not a republish period later.
      r.entry.nextAt = node.clock.now() + 2 * node.init.stabilizeMs;
      return;
    }
    lr.replicas.forEach((h, k) => {
      let slot = perHolder.get(h.id);
      if (!slot) {
        slot = { to: h, items: [] };
        perHolder.set(h.id, slot);
      }
      slot.items.push({ r: j, owner: k === 0 });
    });
  });
  const stored = new Array<number>(recs.length).fill(0);
  const ownerError = new Array<string | null>(recs.length).fill(null);
  await Promise.all(
    [...perHolder.values()].flatMap(({ to, items }) => {
      const chunks: (typeof items)[] = [];
      for (let s = 0; s < items.length; s += STORE_BATCH) chunks.push(items.slice(s, s + STORE_BATCH));
      return chunks.map(async (chunk) => {
        const raw = await node.call(to, METHOD.STORE, { records: chunk.map((it) => recs[it.r].rec) });
        const rep = raw === null ? null : decodeStoreReply(raw);
        chunk.forEach((it, x) => {
          const res = rep?.ok ? rep.value.results[x] : undefined;
          if (rep?.ok && res === null) stored[it.r]++;
          else if (it.owner && typeof res === 'string') ownerError[it.r] = res;
        });
      });
    }),
  );
  recs.forEach((r, j) => {
    const lr = lrs[j];
    if (!lr.ok) return;
    const err = ownerError[j];
    if (err !== null) out[r.i] = { ok: false, error: err as ErrorCode, reason: 'refused by the owner' };
    else if (stored[j] === 0) {
      out[r.i] = { ok: false, error: 'DHT_LOOKUP_FAILED', reason: 'no replica stored the record' };
      r.entry.nextAt = node.clock.now() + 2 * node.init.stabilizeMs;
    } else out[r.i] = { ok: true, replicas: stored[j], hops: lr.hops };
  });
  return out;
}
