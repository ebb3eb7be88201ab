/**
 * Reading keys straight from their likely holders, without confirming the
 * owner (ChordNode.getManyDirect).
 *
 * A Chord get confirms the owner through two sources (lookup.ts) before
 * fetching, which costs one to three NEIGHBORS round trips per key. This read
 * skips that: the ring view (RingView, the nodes this node heard of lately)
 * names the likely holders of every key, the owner and its successors. Keys
 * are grouped so that one FETCH per node covers as many as it can hold (on a
 * ring of 50 the eleven keys of one SecP2PSIP user take about six FETCHes,
 * where routing took about 30 messages); the node's own share is read
 * locally. Keys the guessed holders do not return go through unconfirmed
 * lookups (lookupMany) and one FETCH per owner found.
 *
 * What this gives up: a node that is not the owner may answer. So a record is
 * accepted only when this node's own validator takes it, and the read is
 * sound only for keys whose validator authenticates the value itself (a
 * signature by a known writer): then the answering node can hand back the
 * genuine record, hide it, or hand back an older genuine version, never a
 * forged one. Deciding which keys qualify, and what to do about missing or
 * older versions, is the caller's (secp2psip/ring-fetch.ts does both). Every
 * record returned here is unconfirmed; keys missing from the result were not
 * found this way and should be read with a confirmed get.
 */
import type { NodeRef, Payload } from '../../rpc/types.ts';
import type { Clock } from '../../util/clock.ts';
import type { DhtRecord } from '../store/record.ts';
import type { RecordStore } from '../store/record-store.ts';
import { readPosition } from '../store/ring-id.ts';
import type { GetResult, LookupOutcome } from './chord-types.ts';
import { decodeFetchReply, MAX_KEYS_PER_FETCH, METHOD } from './messages.ts';
import type { RingView } from './routing-table.ts';

/** What the direct read uses of a Chord node (a ChordNode is one). */
export interface DirectReadNode {
  readonly self: NodeRef;
  readonly id: string;
  /** Copies kept of each record: the holders guessed per key. */
  readonly r: number;
  /** Smoothed round trip of the node's RPCs (ms). */
  readonly rttMs: number;
  readonly clock: Pick<Clock, 'setTimer'>;
  /** The node's own share, and its validator. */
  readonly store: Pick<RecordStore, 'get' | 'check'>;
  /** Nodes heard of lately; a silent one is muted. */
  readonly view: Pick<RingView, 'mute'>;
  /** An RPC that never throws: null on timeout, refusal or a closed peer. */
  call(to: NodeRef, method: string, payload: Payload): Promise<Payload | null>;
  guessHolders(pos: string, count: number): NodeRef[];
  lookupMany(targets: readonly string[], confirm?: boolean, avoid?: Iterable<string>): Promise<LookupOutcome[]>;
}

/** A record a direct read accepted. */
export type FoundRecord = Extract<GetResult, { ok: true }>;

/** Told about each record as soon as it is accepted, before the rest arrive. */
export type OnRecord = (key: string, r: FoundRecord) => void;

export interface DirectFetchOptions {
  /** Called for each accepted record as it arrives. */
  onRecord?: OnRecord;
  /**
   * How long a guessed holder may take before its keys go the routed way
   * (ms; default the larger of DIRECT_PATIENCE_MS and four smoothed round
   * trips of the node's RPCs).
   */
  patienceMs?: number;
}

export interface DirectFetch {
  /** The accepted records; a key absent here was not found by the direct read. */
  found: Map<string, FoundRecord>;
  /** FETCH and lookup messages sent. */
  messages: number;
}

/** One FETCH: whom to ask, for which keys, counted as how many hops. */
export interface Ask {
  to: NodeRef;
  keys: string[];
  hops: number;
}

/**
 * How long a guessed holder may take before its keys go the routed way
 * (ms): a holder that crashed without a word would otherwise hold the read
 * for a whole RPC timeout. Its late answer is ignored.
 */
export const DIRECT_PATIENCE_MS = 400;

/** The guessed holders first, then unconfirmed lookups for what they did not return. */
export async function getManyDirect(
  node: DirectReadNode,
  keys: readonly string[],
  opts: DirectFetchOptions = {},
): Promise<DirectFetch> {
  const found = new Map<string, FoundRecord>();
  const accept: OnRecord = (k, r) => {
    found.set(k, r);
    opts.onRecord?.(k, r);
  };
  const slow = new Set<string>();
  const patience = opts.patienceMs ?? Math.max(DIRECT_PATIENCE_MS, 4 * node.rttMs);
  let messages = await fetchFrom(node, planFromView(node, keys), accept, patience, slow);
  const left = keys.filter((k) => !found.has(k));
  if (left.length > 0) {
    const owners = await node.lookupMany(
      left.map((k) => readPosition(k)),
      false,
      slow,
    );
    const asks = new Map<string, Ask>();
    left.forEach((k, i) => {
      const lr = owners[i];
      messages += lr.queries;
      if (lr.ok) addAsk(asks, lr.owner, k, lr.hops + 1);
    });
    messages += await fetchFrom(node, [...asks.values()], accept);
  }
  return { found, messages };
}

/**
 * Before the first direct reads: start the ring view, so that from now on
 * it keeps every node the node hears of (maintenance replies, lookups) up to
 * its size, not only the last few. A view started at the first read names
 * wrong holders for most keys, and those reads fall back to routed lookups
 * (about seven FINDs more per SecP2PSIP user read on a ring of 50). With
 * `spread` > 0, also unconfirmed lookups of that many evenly spaced
 * positions (one batch, replies shared), for a view needed at once; the
 * links to the nodes asked are then open too.
 */
export async function warmView(node: DirectReadNode, spread = 0): Promise<void> {
  node.guessHolders(node.id, 1);
  if (spread <= 0) return;
  const step = (1n << 160n) / BigInt(spread);
  const targets = Array.from({ length: spread }, (_, i) => (BigInt(i) * step).toString(16).padStart(40, '0'));
  await node.lookupMany(targets, false);
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
export function planFromView(node: DirectReadNode, keys: readonly string[]): Ask[] {
  const cands = keys.map((k) => node.guessHolders(readPosition(k), node.r));
  const open = new Set(keys.map((_, i) => i));
  const out: Ask[] = [];
  const mine = keys.map((_, i) => i).filter((i) => cands[i].some((c) => c.id === node.id));
  if (mine.length > 0) {
    out.push({ to: node.self, keys: mine.map((i) => keys[i]), hops: 0 });
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
 * One FETCH per ask, all at once (the node's own share read locally);
 * returns the messages sent. `patienceMs`: stop waiting for the slow ones,
 * whose ids go to `slow`.
 */
async function fetchFrom(
  node: DirectReadNode,
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
          timer = node.clock.setTimer(patienceMs, done);
        });
  const all = Promise.all(
    asks.map(async (a) => {
      if (a.to.id === node.id) {
        for (const k of a.keys) {
          const rec = node.store.get(k);
          if (rec) checked(node, k, rec, 0, accept);
        }
        return;
      }
      sent++;
      pending.add(a.to.id);
      const raw = await node.call(a.to, METHOD.FETCH, { keys: a.keys });
      pending.delete(a.to.id);
      const rep = raw === null ? null : decodeFetchReply(raw);
      if (!rep?.ok || rep.value.records.length !== a.keys.length) return;
      const records = rep.value.records;
      a.keys.forEach((k, i) => {
        const rec = records[i];
        if (rec) checked(node, k, rec, a.hops, accept);
      });
    }),
  );
  await (patience ? Promise.race([all, patience]) : all);
  open = false;
  for (const id of pending) {
    // Silent past the patience: not a holder to guess again until the ring names it anew.
    node.view.mute(id);
    slow?.add(id);
  }
  timer?.cancel();
  return sent;
}

/** Accept a record for `key` if it is for that key and the node's own validator takes it. */
function checked(node: DirectReadNode, key: string, rec: DhtRecord, hops: number, accept: OnRecord): void {
  if (rec.key !== key) return;
  if (node.store.check(rec) !== null) return;
  accept(key, { ok: true, record: rec, value: rec.value, hops });
}
