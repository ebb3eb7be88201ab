import type { NodeRef } from '../../rpc/types.ts';
import { fail, ok, type Result } from '../../util/errors.ts';
import { type DhtRecord, parseRecord } from '../store/record.ts';
import { isRingId } from '../store/ring-id.ts';

/**
 * Chord wire messages, all in one place. Each request and response is plain
 * data (CBOR-encodable). Decoders take untrusted input and return a Result
 * naming what is malformed; they never throw (the one decoder convention of
 * every wire module).
 */
export const METHOD = {
  /** Iterative routing step: the asked node's successor list and its closest preceding nodes for `target`. */
  FIND: 'chord.find',
  /** Predecessor and successor list; with `notify`, also Chord's notify(n) (Stoica et al. Fig. 7). */
  NEIGHBORS: 'chord.neighbors',
  PING: 'chord.ping',
  STORE: 'chord.store',
  FETCH: 'chord.fetch',
  /** A joining node pulls the records it now owns or replicates (hand-off on join). */
  HANDOFF: 'chord.handoff',
  /** Graceful leave: hand records and neighbours over before going. */
  LEAVE: 'chord.leave',
  /** A node's routing table, used once by a joining node to seed its fingers. */
  FINGERS: 'chord.fingers',
} as const;

export const MAX_REFS = 64;
export const MAX_RECORDS_PER_MESSAGE = 100_000;
export const MAX_KEYS_PER_FETCH = 256;

export interface FindRequest {
  target: string;
}
export interface FindReply {
  succs: NodeRef[];
  next: NodeRef[];
}
export interface NeighborsRequest {
  notify: boolean;
}
export interface NeighborsReply {
  pred: NodeRef | null;
  succs: NodeRef[];
  /** The answering node's ring id (absent from older nodes): a caller drops an entry whose id it is not. */
  id?: string;
}
export interface StoreRequest {
  records: DhtRecord[];
}
/** Per record: null when stored (or an equal/newer one is held), else an error code. */
export interface StoreReply {
  results: (string | null)[];
}
export interface FetchRequest {
  keys: string[];
}
export interface FetchReply {
  records: (DhtRecord | null)[];
}
export interface RecordsReply {
  records: DhtRecord[];
}
export interface LeaveRequest {
  pred: NodeRef | null;
  succs: NodeRef[];
  records: DhtRecord[];
}
export interface RefsReply {
  refs: NodeRef[];
}

export function encodeRef(r: NodeRef): Record<string, unknown> {
  const o: Record<string, unknown> = { id: r.id, addr: r.addr, key: r.key };
  if (r.admission) o.admission = r.admission;
  return o;
}

/**
 * One object per node ref in this process (bounded). Every routing reply
 * names the same few nodes again and again; decoding each into a fresh
 * object made the routing tables and views swap their entries for new
 * copies on every reply, so the old copies died after surviving a while
 * (costly scavenges, promoted garbage) and every per-object cache (encoded
 * token trees in rpc/codec.ts, key hex in rpc/tls-dial.ts, the id binding
 * check) missed. A decoded ref equal in every field to the one held for its
 * id is replaced by that one; the fresh copy dies young. With the in-memory
 * network's zero-copy mode the held object itself comes back, and is known
 * checked; nothing ever mutates a decoded ref.
 */
const interned = new Map<string, NodeRef>();
const MAX_INTERNED = 65_536;

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function own(b: Uint8Array): Uint8Array {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : b.slice();
}

export function decodeRef(x: unknown): Result<NodeRef> {
  if (typeof x !== 'object' || x === null) return fail('ref: not an object');
  const o = x as Record<string, unknown>;
  const held = typeof o.id === 'string' ? interned.get(o.id) : undefined;
  if (held === x) return ok(held);
  if (!isRingId(o.id)) return fail('ref: bad id');
  if (typeof o.addr !== 'string' || o.addr.length === 0 || o.addr.length > 300) return fail('ref: bad addr');
  if (!(o.key instanceof Uint8Array) || o.key.length !== 32) return fail('ref: bad key');
  if (o.admission !== undefined && !(o.admission instanceof Uint8Array && o.admission.length <= 8192))
    return fail('ref: bad admission');
  const adm = o.admission as Uint8Array | undefined;
  if (held && held.addr === o.addr && sameBytes(held.key, o.key) && sameBytes(held.admission, adm || undefined))
    return ok(held);
  // Held for long: a copy, not a view that would keep the whole reply's buffer alive.
  const r: NodeRef = { id: o.id, addr: o.addr, key: own(o.key) };
  if (adm) r.admission = own(adm);
  if (interned.size >= MAX_INTERNED) interned.clear();
  interned.set(r.id, r);
  return ok(r);
}

function obj(x: unknown, what: string): Result<Record<string, unknown>> {
  return typeof x === 'object' && x !== null && !Array.isArray(x)
    ? ok(x as Record<string, unknown>)
    : fail(`${what}: not an object`);
}

function refList(x: unknown, what: string, max = MAX_REFS): Result<NodeRef[]> {
  if (!Array.isArray(x) || x.length > max) return fail(`${what}: not a list of at most ${max} refs`);
  const out: NodeRef[] = [];
  for (const e of x) {
    const r = decodeRef(e);
    if (!r.ok) return fail(`${what}: ${r.error}`);
    out.push(r.value);
  }
  return ok(out);
}

/** A predecessor field: null, or a ref. */
function optionalRef(x: unknown, what: string): Result<NodeRef | null> {
  if (x === null) return ok(null);
  const r = decodeRef(x);
  return r.ok ? r : fail(`${what}: ${r.error}`);
}

function recordList(x: unknown, what: string): Result<DhtRecord[]> {
  if (!Array.isArray(x) || x.length > MAX_RECORDS_PER_MESSAGE)
    return fail(`${what}: not a list of at most ${MAX_RECORDS_PER_MESSAGE} records`);
  const out: DhtRecord[] = [];
  for (const e of x) {
    const r = parseRecord(e);
    if (!r.ok) return fail(`${what}: ${r.error}`);
    out.push(r.value);
  }
  return ok(out);
}

export function decodeFindRequest(x: unknown): Result<FindRequest> {
  const o = obj(x, 'find');
  if (!o.ok) return o;
  return isRingId(o.value.target) ? ok({ target: o.value.target }) : fail('find: bad target');
}

export function decodeFindReply(x: unknown): Result<FindReply> {
  const o = obj(x, 'find reply');
  if (!o.ok) return o;
  const succs = refList(o.value.succs, 'find reply succs');
  if (!succs.ok) return succs;
  const next = refList(o.value.next, 'find reply next');
  if (!next.ok) return next;
  return ok({ succs: succs.value, next: next.value });
}

export function decodeNeighborsRequest(x: unknown): Result<NeighborsRequest> {
  const o = obj(x, 'neighbors');
  if (!o.ok) return o;
  return typeof o.value.notify === 'boolean' ? ok({ notify: o.value.notify }) : fail('neighbors: bad notify');
}

export function decodeNeighborsReply(x: unknown): Result<NeighborsReply> {
  const o = obj(x, 'neighbors reply');
  if (!o.ok) return o;
  const pred = optionalRef(o.value.pred, 'neighbors reply pred');
  if (!pred.ok) return pred;
  const succs = refList(o.value.succs, 'neighbors reply succs');
  if (!succs.ok) return succs;
  const id = o.value.id;
  if (id === undefined) return ok({ pred: pred.value, succs: succs.value });
  return isRingId(id) ? ok({ pred: pred.value, succs: succs.value, id }) : fail('neighbors reply: bad id');
}

export function encodeNeighborsReply(r: NeighborsReply): Record<string, unknown> {
  const out: Record<string, unknown> = { pred: r.pred ? encodeRef(r.pred) : null, succs: r.succs.map(encodeRef) };
  if (r.id !== undefined) out.id = r.id;
  return out;
}

export function decodeStoreRequest(x: unknown): Result<StoreRequest> {
  const o = obj(x, 'store');
  if (!o.ok) return o;
  const records = recordList(o.value.records, 'store');
  return records.ok ? ok({ records: records.value }) : records;
}

export function decodeStoreReply(x: unknown): Result<StoreReply> {
  const o = obj(x, 'store reply');
  if (!o.ok) return o;
  const results = o.value.results;
  if (!Array.isArray(results) || !results.every((e) => e === null || typeof e === 'string'))
    return fail('store reply: results not a list of null or error codes');
  return ok({ results: results as (string | null)[] });
}

export function decodeFetchRequest(x: unknown): Result<FetchRequest> {
  const o = obj(x, 'fetch');
  if (!o.ok) return o;
  const keys = o.value.keys;
  if (!Array.isArray(keys) || keys.length > MAX_KEYS_PER_FETCH)
    return fail(`fetch: keys not a list of at most ${MAX_KEYS_PER_FETCH}`);
  if (!keys.every((k) => typeof k === 'string' && k.length > 0 && k.length <= 512)) return fail('fetch: bad key');
  return ok({ keys: keys as string[] });
}

export function decodeFetchReply(x: unknown): Result<FetchReply> {
  const o = obj(x, 'fetch reply');
  if (!o.ok) return o;
  if (!Array.isArray(o.value.records)) return fail('fetch reply: records not a list');
  const out: (DhtRecord | null)[] = [];
  for (const e of o.value.records) {
    if (e === null) out.push(null);
    else {
      const r = parseRecord(e);
      if (!r.ok) return fail(`fetch reply: ${r.error}`);
      out.push(r.value);
    }
  }
  return ok({ records: out });
}

export function decodeRecordsReply(x: unknown): Result<RecordsReply> {
  const o = obj(x, 'records reply');
  if (!o.ok) return o;
  const records = recordList(o.value.records, 'records reply');
  return records.ok ? ok({ records: records.value }) : records;
}

export function decodeLeaveRequest(x: unknown): Result<LeaveRequest> {
  const o = obj(x, 'leave');
  if (!o.ok) return o;
  const pred = optionalRef(o.value.pred, 'leave pred');
  if (!pred.ok) return pred;
  const succs = refList(o.value.succs, 'leave succs');
  if (!succs.ok) return succs;
  const records = recordList(o.value.records, 'leave');
  if (!records.ok) return records;
  return ok({ pred: pred.value, succs: succs.value, records: records.value });
}

export function decodeRefsReply(x: unknown): Result<RefsReply> {
  const o = obj(x, 'refs reply');
  if (!o.ok) return o;
  const refs = refList(o.value.refs, 'refs reply', 256);
  return refs.ok ? ok({ refs: refs.value }) : refs;
}
