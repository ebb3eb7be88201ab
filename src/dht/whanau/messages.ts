import { fail, ok, type Result } from '../../util/errors.ts';
import type { NodeRef } from '../../rpc/types.ts';
import { HEX_KEY } from './ring.ts';
import { TOKEN_BYTES } from './query-token.ts';

/**
 * Wire messages of the Whanau node, by interface (seed 003 sections 4.2-4.3):
 * public (anyone), peer (only social peers: random walks) and control (only
 * configured admin keys). Payloads are plain CBOR-able objects; every decoder
 * takes untrusted input and returns a Result, never throws.
 */
export const PUBLIC_METHODS = [
  'whanau.getKey',
  'whanau.getId',
  'whanau.sampleRecord',
  'whanau.successors',
  'whanau.query',
  'whanau.try',
] as const;
export const PEER_METHODS = ['whanau.walk', 'whanau.askWalk', 'whanau.ping'] as const;
export const CONTROL_METHODS = [
  'whanau.addPeer',
  'whanau.removePeer',
  'whanau.publish',
  'whanau.setup',
  'whanau.lookup',
  'whanau.dump',
] as const;

export type PublicMethod = (typeof PUBLIC_METHODS)[number];
export type PeerMethod = (typeof PEER_METHODS)[number];
export type ControlMethod = (typeof CONTROL_METHODS)[number];
export type Access = 'public' | 'peer' | 'control';

export function accessOf(method: string): Access | undefined {
  if ((PUBLIC_METHODS as readonly string[]).includes(method)) return 'public';
  if ((PEER_METHODS as readonly string[]).includes(method)) return 'peer';
  if ((CONTROL_METHODS as readonly string[]).includes(method)) return 'control';
  return undefined;
}

/** A record as the DHT carries it: key and opaque value bytes, judged by the application's checker. */
export interface KV {
  key: string;
  value: Uint8Array;
}

/** The end of a random walk: the node reached and the query token it minted. */
export interface WalkEnd {
  ref: NodeRef;
  token: Uint8Array;
}

/**
 * A SETUP question for the end of a random walk (seed 003 Figure A-1:
 * SAMPLE-RECORD, GET-ID, SUCCESSORS-SAMPLE), answered by the node the walk
 * ends at and carried back along the walk's path (walk-question.ts).
 */
export type WalkQuestion =
  | { m: 'sampleRecord' }
  | { m: 'getId'; epoch: number; layer: number }
  | { m: 'successors'; epoch: number; x0: string; t: number };

/** The end of a walk that carried a question: who answered, and its answer (null when it could not). */
export interface AnsweredWalk {
  ref: NodeRef;
  answer: unknown;
}

export const MAX_VALUE_BYTES = 4096;
export const MAX_WALK_BATCH = 1024;
export const MAX_SUCCESSORS = 256;
/** Walks carrying a question per request: their answers (up to t records each) must fit one frame. */
export const MAX_ASKED_WALKS = 256;

type Obj = Record<string, unknown>;

function obj(p: unknown): Obj | undefined {
  return typeof p === 'object' && p !== null && !Array.isArray(p) && !(p instanceof Uint8Array)
    ? (p as Obj)
    : undefined;
}

const isInt = (v: unknown, min: number, max: number): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
const isKey = (v: unknown): v is string => typeof v === 'string' && HEX_KEY.test(v);
const isToken = (v: unknown): v is Uint8Array => v instanceof Uint8Array && v.length === TOKEN_BYTES;

export function decodeNodeRef(p: unknown): Result<NodeRef> {
  const o = obj(p);
  if (!o) return fail('node ref is not a map');
  if (!isKey(o.id)) return fail('node ref id is not 40 hex');
  if (typeof o.addr !== 'string' || o.addr.length === 0 || o.addr.length > 300) return fail('bad node addr');
  if (!(o.key instanceof Uint8Array) || o.key.length !== 32) return fail('node key is not 32 bytes');
  return ok({ id: o.id, addr: o.addr, key: o.key });
}

export function encodeNodeRef(r: NodeRef): Obj {
  return { id: r.id, addr: r.addr, key: r.key };
}

export function decodeKV(p: unknown): Result<KV> {
  const o = obj(p);
  if (!o || !isKey(o.key)) return fail('record key is not 40 hex');
  if (!(o.value instanceof Uint8Array) || o.value.length > MAX_VALUE_BYTES) return fail('bad record value');
  return ok({ key: o.key, value: o.value });
}

export const Requests = {
  walk(p: unknown, maxLength: number): Result<{ length: number; count: number }> {
    const o = obj(p);
    if (!o || !isInt(o.length, 0, maxLength) || !isInt(o.count, 1, MAX_WALK_BATCH)) return fail('bad walk request');
    return ok({ length: o.length, count: o.count });
  },
  askWalk(
    p: unknown,
    maxLength: number,
    layers: number,
  ): Result<{ length: number; count: number; question: WalkQuestion }> {
    const o = obj(p);
    const q = obj(o?.question);
    if (!o || !q || !isInt(o.length, 0, maxLength) || !isInt(o.count, 1, MAX_ASKED_WALKS))
      return fail('bad askWalk request');
    if (q.m === 'sampleRecord') return ok({ length: o.length, count: o.count, question: { m: 'sampleRecord' } });
    if (q.m === 'getId' && isInt(q.epoch, 0, 2 ** 40) && isInt(q.layer, 0, layers - 1))
      return ok({ length: o.length, count: o.count, question: { m: 'getId', epoch: q.epoch, layer: q.layer } });
    if (q.m === 'successors' && isInt(q.epoch, 0, 2 ** 40) && isKey(q.x0) && isInt(q.t, 1, MAX_SUCCESSORS))
      return ok({
        length: o.length,
        count: o.count,
        question: { m: 'successors', epoch: q.epoch, x0: q.x0, t: q.t },
      });
    return fail('bad walk question');
  },
  getId(p: unknown, layers: number): Result<{ epoch: number; layer: number; token: Uint8Array }> {
    const o = obj(p);
    if (!o || !isInt(o.epoch, 0, 2 ** 40) || !isInt(o.layer, 0, layers - 1) || !isToken(o.token))
      return fail('bad getId request');
    return ok({ epoch: o.epoch, layer: o.layer, token: o.token });
  },
  sampleRecord(p: unknown): Result<{ token: Uint8Array }> {
    const o = obj(p);
    if (!o || !isToken(o.token)) return fail('bad sampleRecord request');
    return ok({ token: o.token });
  },
  successors(p: unknown): Result<{ epoch: number; x0: string; t: number; token: Uint8Array }> {
    const o = obj(p);
    if (!o || !isInt(o.epoch, 0, 2 ** 40) || !isKey(o.x0) || !isInt(o.t, 1, MAX_SUCCESSORS) || !isToken(o.token))
      return fail('bad successors request');
    return ok({ epoch: o.epoch, x0: o.x0, t: o.t, token: o.token });
  },
  query(p: unknown, layers: number): Result<{ layer: number; key: string }> {
    const o = obj(p);
    if (!o || !isInt(o.layer, 0, layers - 1) || !isKey(o.key)) return fail('bad query request');
    return ok({ layer: o.layer, key: o.key });
  },
  try(p: unknown): Result<{ key: string; token: Uint8Array }> {
    const o = obj(p);
    if (!o || !isKey(o.key) || !isToken(o.token)) return fail('bad try request');
    return ok({ key: o.key, token: o.token });
  },
  key(p: unknown): Result<{ key: string }> {
    const o = obj(p);
    if (!o || !isKey(o.key)) return fail('bad key');
    return ok({ key: o.key });
  },
  peerKey(p: unknown): Result<{ key: Uint8Array }> {
    const o = obj(p);
    if (!o || !(o.key instanceof Uint8Array) || o.key.length !== 32) return fail('bad peer key');
    return ok({ key: o.key });
  },
  setup(p: unknown): Result<{ epoch?: number }> {
    const o = obj(p) ?? {};
    if (o.epoch !== undefined && !isInt(o.epoch, 0, 2 ** 40)) return fail('bad setup epoch');
    return ok({ epoch: o.epoch as number | undefined });
  },
};

/** A list of walk ends under `walks`, each a node ref plus what `rest` takes from the entry (null: malformed). */
function walkList<T>(p: unknown, max: number, rest: (e: Obj, ref: NodeRef) => T | null): Result<T[]> {
  const o = obj(p);
  if (!o || !Array.isArray(o.walks) || o.walks.length > max) return fail('bad walk response');
  const out: T[] = [];
  for (const w of o.walks) {
    const e = obj(w);
    const ref = decodeNodeRef(e?.ref);
    const v = e && ref.ok ? rest(e, ref.value) : null;
    if (v === null) return fail('bad walk end');
    out.push(v);
  }
  return ok(out);
}

export const Responses = {
  walk(p: unknown): Result<WalkEnd[]> {
    return walkList(p, MAX_WALK_BATCH, (e, ref) => (isToken(e.token) ? { ref, token: e.token } : null));
  },
  /** Answered walks; each answer is checked by the asker against its question's decoder. */
  answeredWalks(p: unknown, max: number): Result<AnsweredWalk[]> {
    return walkList(p, max, (e, ref) => ({ ref, answer: e.answer ?? null }));
  },
  id(p: unknown): Result<string> {
    const o = obj(p);
    return o && isKey(o.id) ? ok(o.id) : fail('bad id response');
  },
  record(p: unknown): Result<KV | null> {
    const o = obj(p);
    if (!o) return fail('bad record response');
    if (o.record === null) return ok(null);
    return decodeKV(o.record);
  },
  records(p: unknown): Result<KV[]> {
    const o = obj(p);
    if (!o || !Array.isArray(o.records) || o.records.length > MAX_SUCCESSORS) return fail('bad records response');
    const out: KV[] = [];
    for (const r of o.records) {
      const kv = decodeKV(r);
      if (!kv.ok) return kv;
      out.push(kv.value);
    }
    return ok(out);
  },
  value(p: unknown): Result<Uint8Array | null> {
    const o = obj(p);
    if (!o) return fail('bad value response');
    if (o.value === null) return ok(null);
    return o.value instanceof Uint8Array && o.value.length <= MAX_VALUE_BYTES ? ok(o.value) : fail('bad value');
  },
  tried(p: unknown, maxMessages: number): Result<{ value: Uint8Array | null; messages: number }> {
    const v = Responses.value(p);
    if (!v.ok) return v;
    const m = (p as Obj).messages;
    return ok({ value: v.value, messages: isInt(m, 0, 1e9) ? Math.min(m, maxMessages) : maxMessages });
  },
};
