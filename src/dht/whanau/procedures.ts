import type { Random } from '../../util/random.ts';
import { arcRange, lowerBound, type RingKey } from './ring.ts';

/**
 * The Whanau procedures of seed 003 Appendix A (Figures ), written
 * once, without I/O. LOOKUP and TRY are generators: they yield the remote step
 * they need (a QUERY to a finger, a random walk, a TRY delegated to the end of
 * a walk) and are resumed with its answer. The protocol node drives them with
 * RPCs; the simulator drives them with direct, counted calls.
 */

/** One layer's fingers sorted by id, as seen by LOOKUP. Views avoid copying the simulator's typed arrays. */
export interface FingerLayer<K extends RingKey, N> {
  readonly ids: ArrayLike<K>;
  node(j: number): N;
}

export interface FingerView<K extends RingKey, N> {
  /** fingers(u, i) for i = 0 .. l-1, each sorted by id. */
  readonly layers: readonly FingerLayer<K, N>[];
}

export type QueryStep<K extends RingKey, N> = { kind: 'query'; node: N; layer: number; key: K };
/** Ask for one fresh random walk from the looking-up node (answered with a walk end, or null). */
export type WalkStep = { kind: 'walk' };
/** Run TRY at the end of a walk (answered with { value, messages }). */
export type DelegateStep<W> = { kind: 'try'; via: W };
export type LookupStep<K extends RingKey, N, W> = QueryStep<K, N> | WalkStep | DelegateStep<W>;

export interface TryOutcome<V> {
  value: V | null;
  /** QUERY messages sent. */
  messages: number;
}

export interface LookupOutcome<V> {
  value: V | null;
  /** All messages: QUERYs by this node, delegated TRYs and the QUERYs those sent. */
  messages: number;
  /** TRY attempts made (local one included). */
  tries: number;
}

export interface RetryLimits {
  /** QUERYs per TRY (Figure A-2, TRY line 6). */
  tryLimit: number;
  /** TRY attempts per LOOKUP, the local one included (Figure A-2, LOOKUP line 4). */
  lookupLimit: number;
}

/**
 * CHOOSE-FINGER(u, x0, key): over the layers whose fingers have an id on the
 * arc [x0, key], pick one layer uniformly, then one such finger uniformly.
 * Returns undefined only when no layer has a finger there.
 */
export function chooseFinger<K extends RingKey, N>(
  view: FingerView<K, N>,
  x0: K,
  key: K,
  rnd: Random,
): { node: N; layer: number; id: K } | undefined {
  const ranges: { layer: number; start: number; count: number }[] = [];
  for (let i = 0; i < view.layers.length; i++) {
    const r = arcRange(view.layers[i].ids, x0, key);
    if (r.count > 0) ranges.push({ layer: i, ...r });
  }
  if (ranges.length === 0) return undefined;
  const pick = ranges[rnd.int(ranges.length)];
  const layer = view.layers[pick.layer];
  const j = (pick.start + rnd.int(pick.count)) % layer.ids.length;
  return { node: layer.node(j), layer: pick.layer, id: layer.ids[j] };
}

/**
 * TRY(u, key): walk back through u's layer-0 fingers from the one closest
 * before key (x_{r_f}), each time widening the arc [x_j, key] and querying a
 * finger CHOOSE-FINGER picks from it, until a valid value or the retry limit.
 * The driver answers each QueryStep with the checked value or null.
 */
export function* tryProcedure<K extends RingKey, N, V>(
  view: FingerView<K, N>,
  key: K,
  limit: number,
  rnd: Random,
): Generator<QueryStep<K, N>, TryOutcome<V>, unknown> {
  const layer0 = view.layers[0]?.ids;
  const n0 = layer0?.length ?? 0;
  if (n0 === 0) return { value: null, messages: 0 };
  // key ≼ x_1 ≼ ... ≼ x_rf ≺ key: x_rf is the last layer-0 id strictly before key.
  const p = lowerBound(layer0, key);
  let messages = 0;
  for (let m = 0; m < Math.min(limit, n0); m++) {
    const x0 = layer0[(((p - 1 - m) % n0) + n0) % n0];
    const choice = chooseFinger(view, x0, key, rnd);
    if (!choice) continue;
    messages++;
    const value = (yield { kind: 'query', node: choice.node, layer: choice.layer, key }) as V | null;
    if (value !== null && value !== undefined) return { value, messages };
  }
  return { value: null, messages };
}

/**
 * LOOKUP(u, key): TRY at u itself, then at the ends of fresh random walks
 * from u (a node whose own fingers are poor, e.g. near the Sybil region, thus
 * borrows a typical honest node's tables), until found or the retry limit.
 */
export function* lookupProcedure<K extends RingKey, N, W, V>(
  view: FingerView<K, N>,
  key: K,
  limits: RetryLimits,
  rnd: Random,
): Generator<LookupStep<K, N, W>, LookupOutcome<V>, unknown> {
  const local = yield* tryProcedure<K, N, V>(view, key, limits.tryLimit, rnd);
  let messages = local.messages;
  let tries = 1;
  if (local.value !== null) return { value: local.value, messages, tries };
  while (tries < limits.lookupLimit) {
    tries++;
    const via = (yield { kind: 'walk' }) as W | null;
    if (via === null || via === undefined) continue;
    const r = (yield { kind: 'try', via }) as TryOutcome<V> | null;
    messages += 1 + (r?.messages ?? 0);
    if (r && r.value !== null && r.value !== undefined) return { value: r.value, messages, tries };
  }
  return { value: null, messages, tries };
}

/**
 * SUCCESSORS-SAMPLE(v, x0): from v's db sorted by key, the first t records
 * whose keys follow x0 on the ring (x0 ≼ key_1 ≼ ...). Returns their indices.
 */
export function successorsSample<K extends RingKey>(sortedDbKeys: ArrayLike<K>, x0: K, t: number): number[] {
  const n = sortedDbKeys.length;
  const out: number[] = [];
  if (n === 0) return out;
  const start = successorsStart(sortedDbKeys, x0, 0, n);
  for (let k = 0; k < Math.min(t, n); k++) out.push((start + k) % n);
  return out;
}

/**
 * Where SUCCESSORS-SAMPLE starts within the sorted slice [lo, hi): the first
 * key at or after x0, as an offset from lo (0 when x0 is past every key: the
 * sample wraps around). The simulator calls this on its typed arrays directly.
 */
export function successorsStart<K extends RingKey>(sortedKeys: ArrayLike<K>, x0: K, lo: number, hi: number): number {
  const j = lowerBound(sortedKeys, x0, lo, hi) - lo;
  return j === hi - lo ? 0 : j;
}

/**
 * CHOOSE-ID(u, i): layer 0 takes the key of a random db record, so ids follow
 * the key distribution; layer i > 0 copies the id of a random layer i-1 finger,
 * so honest ids follow wherever the Sybils clustered theirs (the defence
 * against the key-clustering attack). Returns undefined when the source is empty.
 */
export function chooseId<K extends RingKey>(
  layer: number,
  dbKeys: ArrayLike<K>,
  prevFingerIds: ArrayLike<K> | undefined,
  rnd: Random,
): K | undefined {
  const src = layer === 0 ? dbKeys : prevFingerIds;
  if (!src || src.length === 0) return undefined;
  return src[rnd.int(src.length)];
}
