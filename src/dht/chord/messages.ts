import type { NodeRef } from '../../rpc/types.ts';
import { type DhtRecord, parseRecord } from '../store/record.ts';
import { isRingId } from '../store/ring-id.ts';

/**
 * Chord wire messages, all in one place. Each request and response is plain
 * data (CBOR-encodable). Decoders take untrusted input and return null on
 * anything malformed; they never throw.
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
 * Ref objects already checked by this process. With the in-memory network's
 * zero-copy mode the same objects travel between nodes; checking each once
 * is enough because nothing ever mutates a decoded ref.
 */
const checkedRefs = new WeakSet<object>();

export function decodeRef(x: unknown): NodeRef | null {
  if (typeof x !== 'object' || x === null) return null;
  if (checkedRefs.has(x)) return x as NodeRef;
  const o = x as Record<string, unknown>;
  if (!isRingId(o.id) || typeof o.addr !== 'string' || o.addr.length === 0 || o.addr.length > 300) return null;
  if (!(o.key instanceof Uint8Array) || o.key.length !== 32) return null;
  if (o.admission !== undefined && !(o.admission instanceof Uint8Array && o.admission.length <= 8192)) return null;
  const r: NodeRef = { id: o.id, addr: o.addr, key: o.key };
  if (o.admission) r.admission = o.admission as Uint8Array;
  checkedRefs.add(r);
  checkedRefs.add(x);
  return r;
}

function obj(x: unknown): Record<string, unknown> | null {
  return typeof x === 'object' && x !== null && !Array.isArray(x) ? (x as Record<string, unknown>) : null;
}

function refList(x: unknown, max = MAX_REFS): NodeRef[] | null {
  if (!Array.isArray(x) || x.length > max) return null;
  const out: NodeRef[] = [];
  for (const e of x) {
    const r = decodeRef(e);
    if (!r) return null;
    out.push(r);
  }
  return out;
}

function recordList(x: unknown): DhtRecord[] | null {
  if (!Array.isArray(x) || x.length > MAX_RECORDS_PER_MESSAGE) return null;
  const out: DhtRecord[] = [];
  for (const e of x) {
    const r = parseRecord(e);
    if (!r) return null;
    out.push(r);
  }
  return out;
}

export function decodeFindRequest(x: unknown): FindRequest | null {
  const o = obj(x);
  return o && isRingId(o.target) ? { target: o.target } : null;
}

export function decodeFindReply(x: unknown): FindReply | null {
  const o = obj(x);
  if (!o) return null;
  const succs = refList(o.succs);
  const next = refList(o.next);
  return succs && next ? { succs, next } : null;
}

export function decodeNeighborsRequest(x: unknown): NeighborsRequest | null {
  const o = obj(x);
  return o && typeof o.notify === 'boolean' ? { notify: o.notify } : null;
}

export function decodeNeighborsReply(x: unknown): NeighborsReply | null {
  const o = obj(x);
  if (!o) return null;
  const pred = o.pred === null ? null : decodeRef(o.pred);
  const succs = refList(o.succs);
  if ((o.pred !== null && !pred) || !succs) return null;
  if (o.id !== undefined && !isRingId(o.id)) return null;
  return o.id === undefined ? { pred, succs } : { pred, succs, id: o.id };
}

export function encodeNeighborsReply(r: NeighborsReply): Record<string, unknown> {
  const out: Record<string, unknown> = { pred: r.pred ? encodeRef(r.pred) : null, succs: r.succs.map(encodeRef) };
  if (r.id !== undefined) out.id = r.id;
  return out;
}

export function decodeStoreRequest(x: unknown): StoreRequest | null {
  const o = obj(x);
  const records = o ? recordList(o.records) : null;
  return records ? { records } : null;
}

export function decodeStoreReply(x: unknown): StoreReply | null {
  const o = obj(x);
  if (!o || !Array.isArray(o.results)) return null;
  if (!o.results.every((e) => e === null || typeof e === 'string')) return null;
  return { results: o.results as (string | null)[] };
}

export function decodeFetchRequest(x: unknown): FetchRequest | null {
  const o = obj(x);
  if (!o || !Array.isArray(o.keys) || o.keys.length > MAX_KEYS_PER_FETCH) return null;
  if (!o.keys.every((k) => typeof k === 'string' && k.length > 0 && k.length <= 512)) return null;
  return { keys: o.keys as string[] };
}

export function decodeFetchReply(x: unknown): FetchReply | null {
  const o = obj(x);
  if (!o || !Array.isArray(o.records)) return null;
  const out: (DhtRecord | null)[] = [];
  for (const e of o.records) {
    if (e === null) out.push(null);
    else {
      const r = parseRecord(e);
      if (!r) return null;
      out.push(r);
    }
  }
  return { records: out };
}

export function decodeRecordsReply(x: unknown): RecordsReply | null {
  const o = obj(x);
  const records = o ? recordList(o.records) : null;
  return records ? { records } : null;
}

export function decodeLeaveRequest(x: unknown): LeaveRequest | null {
  const o = obj(x);
  if (!o) return null;
  const pred = o.pred === null ? null : decodeRef(o.pred);
  const succs = refList(o.succs);
  const records = recordList(o.records);
  if ((o.pred !== null && !pred) || !succs || !records) return null;
  return { pred, succs, records };
}

export function decodeRefsReply(x: unknown): RefsReply | null {
  const o = obj(x);
  const refs = o ? refList(o.refs, 256) : null;
  return refs ? { refs } : null;
}
