/**
 * Several puts as one batch (ChordNode.putMany): what n independent puts
 * would do, with fewer messages. The keys' lookups share one LookupBatch (a
 * successor list that covers several keys answers for all of them, so keys
 * with the same owner cost one walk), and each holder gets one STORE carrying
 * every record it is owner or replica of, instead of one STORE per record.
 *
 * Where the node's ring view guesses the holders (links kept warm), the
 * STOREs go to the guessed replicas beside the lookups instead of after them
 * (see putMany), and only the replicas the lookups confirm count. A writer
 * whose records may leave only once something else is done (`storeAfter`)
 * still gets its lookups under way at once: only the STOREs wait.
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
export type BatchNode = Pick<
  ChordNode,
  'clock' | 'id' | 'init' | 'store' | 'maintenance' | 'lookupMany' | 'call' | 'r' | 'guessHolders' | 'lookupContext'
>;

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
  const p = prepare(node, key, value, ttlMs);
  if (p.ok) node.maintenance.published.set(key, p.entry);
  return p;
}

/** The record `publish` would take into the republish set, checked, without taking it (nor anything else). */
function prepare(
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
  return { ok: true, entry: { record, nextAt: node.clock.now() + node.init.republishMs } };
}

/**
 * The holders a key's records are sent to before its lookup is back: the owner the node's ring view
 * guesses and the next r - 1 nodes of the view, where the lookup itself would start from that guess (links
 * kept warm, a plausible gap: ChordNode.lookupContext `guess`); none elsewhere.
 */
function guessedReplicas(node: BatchNode, pos: string, guess: ReturnType<BatchNode['lookupContext']>['guess']) {
  const g = guess?.(pos);
  if (!g) return [];
  const holders = node.guessHolders(pos, node.r);
  return holders[0]?.id === g.owner.id ? holders : [];
}

/** One record of a batch: its entry's index, what it publishes, what it replaces, and whether it was dropped. */
interface BatchRecord {
  i: number;
  entry: { record: DhtRecord; nextAt: number };
  /** The republish set's entry for the key when the record was made (a gated batch checks it is still there). */
  prev: unknown;
  /** Refused when its gate opened (commitGated): not stored, its result already set. */
  dropped?: boolean;
}

/** What a batch put may be told besides its records. */
export interface PutManyOptions {
  /**
   * No record leaves this node before this settles. The lookups start at once (a FIND carries a key's
   * position, never a record), the STOREs wait for it, and the records enter the republish set only then
   * too; if it rejects, putMany rejects with its reason and no holder gets a record, now or from the
   * maintenance. For a writer that may store only once something else is durable (a SecP2PSIP bootstrap's
   * claim, secp2psip/bootstrap-registration.ts): the lookups overlap the wait instead of following it.
   */
  storeAfter?: PromiseLike<unknown>;
}

/**
 * Each record goes to its guessed replicas at once, beside the lookups that confirm them, instead of after
 * them: when the view is right (a ring the node knows whole, links open) the STOREs and the confirmation
 * take one round trip together, not two in a row. Only the confirmed replicas count: a confirmed replica
 * the guess missed gets its STORE once the lookup is back, and a copy sent to a node that turns out not to
 * be a replica is a valid, signed record held by one node more (the store keeps it until it expires, and
 * its own rehome sends it to the owner) and counts for nothing. With `storeAfter`, every STORE waits for it.
 */
export async function putMany(
  node: BatchNode,
  entries: readonly PutEntry[],
  ttlMs: number,
  opts: PutManyOptions = {},
): Promise<PutResult[]> {
  const gate = opts.storeAfter;
  const out: PutResult[] = new Array(entries.length);
  const recs: BatchRecord[] = [];
  for (const [i, { key, value }] of entries.entries()) {
    const prev = node.maintenance.published.get(key);
    // Gated: checked now (a refused record is not looked up), taken into the republish set once the gate opens.
    const p = gate ? prepare(node, key, value, ttlMs) : publish(node, key, value, ttlMs);
    if (!p.ok) out[i] = p;
    else recs.push({ i, entry: p.entry, prev });
  }
  const positions = recs.map((r) => keyPosition(r.entry.record.key));
  // Holder id -> STORE result per record index in `recs` (null: stored; a string: refused; absent: no answer).
  const answers = new Map<string, Map<number, string | null>>();
  const storeAt = (byHolder: Map<string, { to: NodeRef; items: number[] }>) =>
    Promise.all(
      [...byHolder.values()].flatMap(({ to, items }) => {
        const chunks: number[][] = [];
        for (let s = 0; s < items.length; s += STORE_BATCH) chunks.push(items.slice(s, s + STORE_BATCH));
        return chunks.map(async (chunk) => {
          const raw = await node.call(to, METHOD.STORE, { records: chunk.map((j) => recs[j].entry.record) });
          const rep = raw === null ? null : decodeStoreReply(raw);
          let got = answers.get(to.id);
          if (!got) {
            got = new Map();
            answers.set(to.id, got);
          }
          chunk.forEach((j, x) => {
            const res = rep?.ok ? rep.value.results[x] : undefined;
            if (res === null || typeof res === 'string') got.set(j, res);
          });
        });
      }),
    );
  const add = (m: Map<string, { to: NodeRef; items: number[] }>, to: NodeRef, j: number) => {
    const slot = m.get(to.id);
    if (slot) slot.items.push(j);
    else m.set(to.id, { to, items: [j] });
  };
  const guess = node.lookupContext().guess;
  const sentTo = recs.map(() => new Set<string>());
  const early = new Map<string, { to: NodeRef; items: number[] }>();
  positions.forEach((pos, j) => {
    for (const h of guessedReplicas(node, pos, guess)) {
      add(early, h, j);
      sentTo[j].add(h.id);
    }
  });
  // The lookups' first messages leave first: their answers are small, the STOREs' are checked records.
  const looked = node.lookupMany(positions);
  if (gate) {
    let lookedUp = false;
    // (The lookups' outcome is awaited below: this handler only keeps a failure during the wait from being unhandled.)
    looked.then(
      () => {
        lookedUp = true;
      },
      () => {},
    );
    await gate;
    commitGated(node, recs, entries, ttlMs, out);
    // Lookups already back: every STORE goes to the confirmed replicas in one round, none to a guess.
    if (lookedUp) {
      early.clear();
      for (const s of sentTo) s.clear();
    }
    for (const [id, slot] of early) {
      slot.items = slot.items.filter((j) => !recs[j].dropped);
      if (slot.items.length === 0) early.delete(id);
    }
  }
  const [lrs] = await Promise.all([looked, storeAt(early)]);
  // The confirmed replicas the guess missed (all of them where there was no guess).
  const late = new Map<string, { to: NodeRef; items: number[] }>();
  recs.forEach((r, j) => {
    const lr = lrs[j];
    if (r.dropped) return;
    if (!lr.ok) {
      out[r.i] = { ok: false, error: 'DHT_LOOKUP_FAILED', reason: lr.reason };
      retrySoon(node, r.entry);
      return;
    }
    for (const h of lr.replicas) if (!sentTo[j].has(h.id)) add(late, h, j);
  });
  await storeAt(late);
  recs.forEach((r, j) => {
    const lr = lrs[j];
    if (r.dropped || !lr.ok) return;
    let stored = 0;
    let ownerError: string | null = null;
    lr.replicas.forEach((h, k) => {
      const res = answers.get(h.id)?.get(j);
      if (res === null) stored++;
      else if (k === 0 && typeof res === 'string') ownerError = res;
    });
    if (ownerError !== null) out[r.i] = { ok: false, error: ownerError as ErrorCode, reason: 'refused by the owner' };
    else if (stored === 0) {
      out[r.i] = { ok: false, error: 'DHT_LOOKUP_FAILED', reason: 'no replica stored the record' };
      retrySoon(node, r.entry);
    } else out[r.i] = { ok: true, replicas: stored, hops: lr.hops };
  });
  return out;
}

/**
 * The gate is open: each record of a gated batch enters the republish set. One whose key another put published
 * meanwhile is made again one past that one (so the newer record wins at the holders); one its store refuses now
 * is reported and dropped.
 */
function commitGated(
  node: BatchNode,
  recs: BatchRecord[],
  entries: readonly PutEntry[],
  ttlMs: number,
  out: PutResult[],
): void {
  for (const r of recs) {
    const { key, value } = entries[r.i];
    if (node.maintenance.published.get(key) !== r.prev) {
      const p = prepare(node, key, value, ttlMs);
      if (!p.ok) {
        out[r.i] = p;
        r.dropped = true;
        continue;
      }
      r.entry = p.entry;
    }
    node.maintenance.published.set(key, r.entry);
  }
}

/**
 * A record not stored (no owner confirmed) is tried again by the maintenance soon, not a republish period later,
 * and the tick is brought back to its short period so that "soon" holds while stabilization has backed off at rest.
 * For `put` and `putMany` alike.
 */
export function retrySoon(node: Pick<BatchNode, 'clock' | 'init' | 'maintenance'>, entry: { nextAt: number }): void {
  entry.nextAt = node.clock.now() + 2 * node.init.stabilizeMs;
  node.maintenance.republishSoon = true;
  node.maintenance.pacing.wake();
}
